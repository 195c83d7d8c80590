"""The requests of tests/data through functions-framework, as an event function receives them:
the finalize event in binary mode, a raw Pub/Sub push (which the framework turns into a
`messagePublished` CloudEvent itself) and the same message as Eventarc delivers it, each read
into the typed views the functions act on."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from shared.events import PubSubMessage, StorageObject
from shared.generation import rendering
from tests import wire

PROBE = """
import functions_framework

from shared import events

seen = []


@functions_framework.cloud_event
def storage(event):
    seen.append(events.storage_object(event))


@functions_framework.cloud_event
def message(event):
    seen.append(events.pubsub_message(event))
"""
RENDER_REQUEST = {"job_id": "0b8f3c9e-6a4e-4d8e-9a53-2f1b7c0de4a1", "index": 3}


@pytest.fixture
def deliver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Any]:
    """POST tests/data/<name>.json to a probe function `target` served by the framework; what
    the function read from it."""
    source = tmp_path / "wire_probe.py"
    source.write_text(PROBE)
    monkeypatch.setenv("FUNCTION_TARGET", "")  # the framework sets it; put back after the test
    monkeypatch.setitem(sys.modules, "wire_probe", None)

    def post(target: str, name: str) -> Any:
        app = functions_framework.create_app(target, str(source))
        headers, body = wire.request(name)
        answer = app.test_client().post("/", headers=headers, data=json.dumps(body))
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return sys.modules["wire_probe"].seen[-1]  # type: ignore[union-attr]

    return post


def test_a_finalize_event_names_the_object_generation_and_metadata(deliver) -> None:
    assert deliver("storage", "storage-object-finalized") == StorageObject(
        bucket="video-gen-image-bucket",
        name="uploads/5d0a2c1e-8f3b-4c6d-9e7a-1b2c3d4e5f60/20261130T085531148048Z_3f1c2a9b.jpg",
        generation=1796517712360415759,
        size=103,
        content_type="image/jpeg",
        metadata={"session-id": "7c9e6679-7425-40de-944b-e07fc1f90ae7"},
    )


@pytest.mark.parametrize(
    ("name", "message_id"),
    [("pubsub-push", "1"), ("pubsub-message-published", "11846392834718299")],
)
def test_a_push_and_an_eventarc_message_read_alike(deliver, name: str, message_id: str) -> None:
    message = deliver("message", name)
    assert message == PubSubMessage(message_id, RENDER_REQUEST, {})
    assert rendering.shot_of(message) == (uuid.UUID(RENDER_REQUEST["job_id"]), 3)
