"""Quarantine: an upload that is not registered is moved aside, not deleted.

The object generation is copied to `quarantine/{original name}` (the reason in its metadata)
and the original deleted, with a warning log line naming the reason. Quarantine keeps the
evidence for support and abuse review; the bucket's lifecycle rule deletes `quarantine/` later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from shared import log, storage
from shared.errors import Transient
from shared.events import StorageObject


def quarantine(obj: StorageObject, reason: str, message: str) -> Literal["quarantined", "gone"]:
    """Move one object generation to `quarantine/{name}` and log why; idempotent."""
    from google.api_core import exceptions as gexc  # loaded with the storage client

    bucket = storage.bucket()
    source = bucket.blob(obj.name, generation=obj.generation)
    target = bucket.blob(storage.QUARANTINE_PREFIX + obj.name)
    target.metadata = _quarantine_metadata(obj.metadata, reason, obj.generation)
    try:
        token, _, _ = target.rewrite(source)
        while token is not None:  # large objects are copied in several calls
            token, _, _ = target.rewrite(source, token=token)
        bucket.blob(obj.name).delete(if_generation_match=obj.generation)
    except (gexc.NotFound, gexc.PreconditionFailed):
        # Another delivery moved it already, or a newer generation replaced it (its own event
        # decides about that one).
        log.info("the object generation is gone: nothing to do", action="register_upload.gone")
        return "gone"
    except (gexc.ServerError, gexc.TooManyRequests, ConnectionError, TimeoutError) as exc:
        raise Transient(f"storage is unavailable: {type(exc).__name__}") from exc
    log.warning(
        f"upload quarantined: {message}",
        action="register_upload.quarantined",
        reason=reason,
        quarantined_as=target.name,
        size=obj.size,
    )
    return "quarantined"


def _quarantine_metadata(
    metadata: Mapping[str, str], reason: str, generation: int | None
) -> dict[str, str]:
    return {**metadata, "quarantine-reason": reason, "source-generation": str(generation or "")}
