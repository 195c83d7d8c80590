"""register_upload under the real functions-framework: finalize CloudEvents POSTed to its port."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from shared import db, storage
from tests import wire
from tests.integration import uploads as base
from tools.fixtures import images as make


@pytest.fixture
def function(bucket: str, functions: Any) -> str:
    """functions-framework serving register_upload against this test's database and bucket."""
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    return functions("functions/register_upload/main.py", "register_upload", env).url


def finalize(url: str, name: str, event_id: str | None = None, **fields: Any) -> int:
    """POST the stored object's finalize event, as Eventarc does (tests/data)."""
    blob = storage.bucket().get_blob(name)
    headers, body = wire.finalized(
        blob.bucket.name,
        name,
        blob.generation,
        event_id or uuid.uuid4().hex,
        size=str(blob.size),
        contentType=blob.content_type,
        metadata=blob.metadata,
        **fields,
    )
    return requests.post(url, data=body, headers=headers, timeout=30).status_code


def count_rows() -> int:
    with db.transaction() as conn:
        return db.one(conn, "SELECT count(*) AS n FROM reference_images")["n"]  # type: ignore[index]


def test_the_same_event_twice_at_once_leaves_one_row(function: str, owner: dict[str, Any]) -> None:
    name = base.upload_name(owner)
    base.put(name, make.jpeg_rotated())
    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = list(pool.map(lambda _: finalize(function, name, "redelivered"), range(2)))
    assert statuses == [200, 200]
    assert finalize(function, name, "redelivered") == 200
    assert count_rows() == 1


def test_hostile_unknown_and_foreign_objects_are_acknowledged(
    function: str, owner: dict[str, Any]
) -> None:
    hostile = base.upload_name(owner, "x.jpg")
    base.put(hostile, make.truncated(make.jpeg()))
    stranger = base.upload_name({"id": uuid.uuid4()})
    base.put(stranger, make.jpeg(), ticket=False)
    elsewhere = "generated/job/1_x.jpg"
    storage.write(elsewhere, b"not even an image", "image/jpeg")
    assert [finalize(function, n) for n in (hostile, stranger, elsewhere)] == [200, 200, 200]
    assert count_rows() == 0
    assert base.exists(storage.QUARANTINE_PREFIX + hostile)
    assert base.exists(storage.QUARANTINE_PREFIX + stranger)
    assert base.exists(elsewhere)
    # A malformed event is acknowledged too (a retry could not fix it).
    assert finalize(function, elsewhere, generation="not-a-number") == 200
