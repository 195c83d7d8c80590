"""Uploads stored in the GCS emulator as a signed URL or the multipart route would store them,
described as their finalize event does, and what registering them left behind."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared import config, db, storage
from shared.events import StorageObject
from shared.limits import service as limits
from shared.queries import reference_images


def put(name: str, data: bytes, ticket: bool = True, **metadata: str) -> StorageObject:
    """Store an object (with the upload ticket a signed URL would have issued for it, unless
    `ticket` is false) and describe it as its finalize event would."""
    if ticket:
        with db.transaction() as conn:
            user_id = name.split("/")[1]
            limits.admit_upload(conn, user_id, storage.bucket_path(name), max(1, len(data)))
    blob = storage.write(name, data, "application/octet-stream", metadata or None)
    blob.reload()
    return StorageObject(
        bucket=config.settings().bucket,
        name=name,
        generation=blob.generation,
        size=len(data),
        content_type=blob.content_type,
        metadata=dict(blob.metadata or {}),
    )


def upload_name(user: dict[str, Any], file_name: str = "photo.jpg") -> str:
    return storage.upload_object_name(user["id"], file_name)


def row_for(obj: StorageObject) -> dict[str, Any] | None:
    with db.transaction() as conn:
        return reference_images.get_by_path(conn, storage.bucket_path(obj.name))


def exists(name: str) -> bool:
    return storage.bucket().blob(name).exists()


def logged(capsys: pytest.CaptureFixture[str], action: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    return [line for line in lines if line.get("action") == action]
