"""Removing bucket objects reliably once the rows that name them are deleted.

The delete and the object names go into the database in one transaction (the outbox table
`pending_object_deletions`); after commit the names are published to the object-deletions
topic as `{"object_names": [...], "reason": "..."}` and the outbox row is removed. If the
publish fails, or the process dies first, the row stays and the maintenance task
`republish_deletions` publishes it again. `purge_objects` consumes the messages: deleting an
object that is already gone is fine, so duplicates do no harm.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared import config, db, log, pubsub, storage
from shared.db import Connection
from shared.errors import InvalidInput
from shared.queries import object_deletions

CHUNK = 500  # names per message: well under Pub/Sub's 10 MB, a few seconds of deletes
HOLD_SECONDS = 60  # the writer's head start before the republisher may take a row
REPUBLISH_BATCH = 100
PURGEABLE_PREFIXES = (
    storage.UPLOADS_PREFIX,
    storage.GENERATED_PREFIX,
    storage.THUMBNAILS_PREFIX,
    storage.QUARANTINE_PREFIX,
)


def object_names(images: Iterable[dict[str, Any]]) -> list[str]:
    """The bucket objects of image rows: the image itself and its thumbnail, if any."""
    names: list[str] = []
    for row in images:
        names.append(storage.object_name_from_bucket_path(row["gcp_bucket_path"]))
        if row.get("thumbnail_url"):
            names.append(storage.object_name_from_url(row["thumbnail_url"]))
    return list(dict.fromkeys(names))


def enqueue(conn: Connection, names: list[str], reason: str) -> list[dict[str, Any]]:
    """Record the names in the caller's transaction; publish the result after commit."""
    return [
        object_deletions.add(
            conn, object_names=names[i : i + CHUNK], reason=reason, hold_seconds=HOLD_SECONDS
        )
        for i in range(0, len(names), CHUNK)
    ]


def _publish_one(entry: dict[str, Any]) -> None:
    payload = {"object_names": list(entry["object_names"]), "reason": entry["reason"]}
    pubsub.publish(config.settings().topics.object_deletions, payload)
    with db.transaction() as conn:
        object_deletions.remove(conn, outbox_id=entry["id"])


def publish(entries: list[dict[str, Any]]) -> int:
    """Publish committed outbox entries; a failure is left to the republisher. Returns how
    many went out."""
    sent = 0
    for entry in entries:
        try:
            _publish_one(entry)
            sent += 1
        except Exception as exc:  # the delete has committed: the outbox row keeps the names
            log.warning(
                f"object deletions left for the republisher: {type(exc).__name__}",
                action="purge.publish_deferred",
                outbox_id=str(entry["id"]),
            )
    return sent


def republish_pending() -> dict[str, Any]:
    """Maintenance task: publish outbox rows whose writer did not (claimed, so never twice at once)."""
    with db.transaction() as conn:
        due = object_deletions.claim_due(conn, limit=REPUBLISH_BATCH, hold_seconds=HOLD_SECONDS)
    return {"due": len(due), "published": publish(due)}


def _names(data: dict[str, Any]) -> list[str]:
    names = data.get("object_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput("object_names must be a list of strings", code="malformed_event")
    return names


def purge(data: dict[str, Any]) -> dict[str, int]:
    """Delete the named objects (the `purge_objects` service). Names outside the system's own
    prefixes are refused and logged; storage errors raise so the message comes back."""
    deleted = gone = refused = 0
    for name in _names(data):
        if not name.startswith(PURGEABLE_PREFIXES):
            refused += 1
            log.warning("refused to delete an object", action="purge.refused", object=name)
            continue
        if storage.delete(name):
            deleted += 1
        else:
            gone += 1
    summary = {"deleted": deleted, "already_gone": gone, "refused": refused}
    log.info("objects purged", action="purge.done", reason=str(data.get("reason")), **summary)
    return summary
