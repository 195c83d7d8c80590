"""Removing bucket objects reliably once the rows that name them are deleted.

The delete and the objects (names, and the generations recorded for them) go into the database
in one transaction (the outbox table `pending_object_deletions`); after commit the row's id is
published to the object-deletions topic as `{"outbox_id": "..."}`. `purge_objects` deletes the
objects that row names, each only while it is still the recorded generation (a shot rendered
again under the same name stays), then removes the row. A message names outbox rows, never
objects: whoever can publish to the topic can delete only what the product queued. If the
publish fails, or the process dies first, or the purge never comes, the row stays and the
maintenance task `republish_deletions` publishes it again. Deleting what is gone is fine, so
duplicates do no harm.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from shared import config, db, log, pubsub, storage
from shared.db import Connection
from shared.errors import InvalidInput
from shared.queries import object_deletions

CHUNK = 500  # objects per outbox row (one message each): a few seconds of deletes
HOLD_SECONDS = 60  # the writer's head start before the republisher may take a row
REPUBLISH_SECONDS = 900  # a republished row that is still here then is published again
REPUBLISH_BATCH = 100

StoredObject = tuple[str, int | None]  # an object name and the generation recorded for it


def objects(images: Iterable[dict[str, Any]]) -> list[StoredObject]:
    """The bucket objects of image rows: the image itself and its thumbnail, if any, with the
    generations the render recorded."""
    found: list[StoredObject] = []
    for row in images:
        name = storage.object_name_from_bucket_path(row["gcp_bucket_path"])
        found.append((name, row.get("object_generation")))
        if row.get("thumbnail_url"):
            thumbnail = storage.object_name_from_url(row["thumbnail_url"])
            found.append((thumbnail, row.get("thumbnail_generation")))
    return list(dict.fromkeys(found))


def enqueue(conn: Connection, stored: list[StoredObject], reason: str) -> list[dict[str, Any]]:
    """Record the objects in the caller's transaction; publish the result after commit."""
    return [
        object_deletions.add(
            conn,
            object_names=[name for name, _ in stored[i : i + CHUNK]],
            object_generations=[generation for _, generation in stored[i : i + CHUNK]],
            reason=reason,
            hold_seconds=HOLD_SECONDS,
        )
        for i in range(0, len(stored), CHUNK)
    ]


def publish(entries: list[dict[str, Any]]) -> int:
    """Publish committed outbox entries; a failure is left to the republisher. Returns how
    many went out."""
    sent = 0
    for entry in entries:
        try:
            pubsub.publish(
                config.settings().topics.object_deletions, {"outbox_id": str(entry["id"])}
            )
            sent += 1
        except Exception as exc:  # the delete has committed: the outbox row keeps the names
            log.warning(
                f"object deletions left for the republisher: {type(exc).__name__}",
                action="purge.publish_deferred",
                outbox_id=str(entry["id"]),
            )
    return sent


def republish_pending() -> dict[str, Any]:
    """Maintenance task: publish outbox rows nobody published or purged (claimed, so never
    twice at once)."""
    with db.transaction() as conn:
        due = object_deletions.claim_due(
            conn, limit=REPUBLISH_BATCH, hold_seconds=REPUBLISH_SECONDS
        )
    return {"due": len(due), "published": publish(due)}


def _outbox_id(data: dict[str, Any]) -> str:
    try:
        return str(uuid.UUID(data["outbox_id"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(
            "a purge names an outbox row: outbox_id", code="malformed_event"
        ) from exc


def purge(data: dict[str, Any]) -> dict[str, int]:
    """Delete the objects one outbox row names, then the row (the `purge_objects` service).
    An id that names no row (done already, or never queued) deletes nothing; storage errors
    raise so the message comes back."""
    outbox_id = _outbox_id(data)
    with db.transaction() as conn:
        entry = object_deletions.get(conn, outbox_id=outbox_id)
    summary = {storage.DELETED: 0, storage.GONE: 0, storage.REPLACED: 0}
    if entry is not None:
        generations = entry["object_generations"] or [None] * len(entry["object_names"])
        for name, generation in zip(entry["object_names"], generations, strict=True):
            summary[storage.delete(name, generation)] += 1
        with db.transaction() as conn:
            object_deletions.remove(conn, outbox_id=outbox_id)
    log.info(
        "objects purged",
        action="purge.done",
        outbox_id=outbox_id,
        reason=entry["reason"] if entry else None,
        **summary,
    )
    return summary
