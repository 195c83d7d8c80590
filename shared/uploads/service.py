"""The uploads service, which the generation capability calls: a reference's working copy for
a render when the reference was registered before working copies existed.

`late_working_copy` makes it as a registration would (the same checks and decode budget:
imageinfo; the same copy: registration.store_working_copy, under the same deterministic name, so
concurrent renders write the same object) and names it on the row, so later renders read it.
"""

from __future__ import annotations

from typing import Any

from shared import config, db, log, purge, storage
from shared.errors import NotFound
from shared.queries import reference_images
from shared.uploads import imageinfo, registration
from shared.uploads.imageinfo import ImageRejected

__all__ = ["ImageRejected", "late_working_copy"]


def late_working_copy(reference: dict[str, Any]) -> str:
    """The working copy of a reference registered before working copies existed, made now and
    named on its row; its bucket path. ImageRejected when today's limits refuse the upload (it
    is not decoded), NotFound when the upload or the row is gone (a copy written meanwhile is
    queued for deletion, like the rest of a deleted reference)."""
    path = reference["gcp_bucket_path"]
    name = storage.object_name_from_bucket_path(path)
    data = storage.read(name)  # upload names are never reused: whatever generation is there
    imageinfo.inspect(
        lambda start, end: data[start : end + 1], len(data), config.settings().uploads
    )
    copy = registration.store_working_copy(name, data)
    with db.transaction() as conn:
        named = reference_images.set_working_copy(
            conn, gcp_bucket_path=path, working_copy_path=copy
        )
        gone: list[purge.StoredObject] = [(storage.object_name_from_bucket_path(copy), None)]
        entries = [] if named else purge.enqueue(conn, gone, reason="reference_image_deleted")
    if not named:
        purge.publish(entries)
        raise NotFound(f"reference image {path} was deleted")
    log.info("working copy made on first use", action="render.late_working_copy", object=name)
    return copy
