"""Registering uploaded reference images: the one code path of the trigger, the API and reconcile.

An object `uploads/{user_id}/{timestamp}_{file name}` becomes a `reference_images` row keyed by
its bucket path (idempotent: duplicate and concurrent registrations leave one row). The image is
identified from ranged reads of the event's object generation (`imageinfo`), so the MIME
type comes from the content and the size is as displayed (after EXIF orientation). An accepted
image is then read whole, once, for its working copy (working_copy.py), which the row names.

Decisions (README, "Uploads"):
- An object with no upload ticket (no signed URL was issued for its name: an operator's copy,
  or a limit refused one), or larger than its ticket allowed, is quarantined (`no_ticket`,
  `exceeds_ticket`) before anything is read.
- An object that is not an acceptable image, a name that is not `uploads/{uuid}/{name}`, and a
  user id with no `users` row are quarantined (quarantine.py): moved to `quarantine/{name}`
  with the reason in its metadata and a warning log line.
- A session id in the object's metadata that the user does not own (or that is not a uuid) is
  not linked: the image is registered without a session and a warning is logged.
- Nothing here writes under `uploads/`: the trigger would run on its own output forever.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal

from shared import config, db, log, storage
from shared.errors import NotFound
from shared.events import StorageObject
from shared.limits import service as limits
from shared.queries import reference_images, users
from shared.uploads import imageinfo, working_copy
from shared.uploads.filenames import sanitize_filename
from shared.uploads.imageinfo import ImageInfo, ImageRejected
from shared.uploads.quarantine import quarantine

SESSION_METADATA_KEY = "session-id"  # sent by clients as the x-goog-meta-session-id header
Outcome = Literal["registered", "duplicate", "ignored", "quarantined", "gone"]

_STAMPED_NAME = re.compile(r"\A\d{8}T\d{12}Z_(?P<name>.+)\Z")


def owner_and_file_name(object_name: str) -> tuple[str, str] | None:
    """The user id and the file name of `uploads/{user_id}/{timestamp}_{name}`, or None."""
    parts = object_name.split("/")
    if len(parts) != 3 or parts[0] + "/" != storage.UPLOADS_PREFIX or not parts[2]:
        return None
    try:
        user_id = str(uuid.UUID(parts[1]))
    except ValueError:
        return None
    if user_id != parts[1]:  # only the canonical form that upload_object_name writes
        return None
    stamped = _STAMPED_NAME.match(parts[2])
    return user_id, sanitize_filename(stamped.group("name") if stamped else parts[2])


def as_uuid(value: str | None) -> str | None:
    """The canonical form of a uuid string, or None when it is not one."""
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def identify(object_name: str, size: int, generation: int | None) -> ImageInfo:
    """Identify the stored object from ranged reads pinned to one generation."""

    def read_range(start: int, end: int) -> bytes:
        return storage.read_range(object_name, start, end, generation=generation)

    return imageinfo.inspect(read_range, size, config.settings().uploads)


def store_working_copy(object_name: str, data: bytes) -> str:
    """Make and write the upload's working copy; its bucket path (ImageRejected: no image)."""
    try:
        copy, content_type = working_copy.make(data)
    except (OSError, ValueError, SyntaxError) as exc:  # what Pillow raises for a bad stream
        raise ImageRejected("corrupt", "the image data is damaged") from exc
    name = storage.working_copy_object_name(object_name, content_type)
    storage.write(name, copy, content_type)
    return storage.bucket_path(name)


def record(
    object_name: str,
    size: int,
    info: ImageInfo,
    *,
    user_id: str,
    session_id: str | None,
    working_copy_path: str,
    uploaded_at: datetime | None = None,
) -> dict[str, Any] | None:
    """Insert (or find) the row of an identified upload; None when the user does not exist."""
    found = owner_and_file_name(object_name)
    assert found is not None and found[0] == str(user_id), object_name
    with db.transaction() as conn:
        return reference_images.register(
            conn,
            user_id=user_id,
            session_id=session_id,
            gcp_bucket_path=storage.bucket_path(object_name),
            gcp_url=storage.canonical_url(object_name),
            file_name=found[1],
            file_size=size,
            mime_type=info.mime_type,
            width=info.width,
            height=info.height,
            working_copy_path=working_copy_path,
            uploaded_at=uploaded_at,
        )


def handle_finalize(obj: StorageObject) -> None:
    """The `register_upload` trigger's service: register one finalized object."""
    with log.bind(object=obj.name, generation=obj.generation):
        register_object(obj)


def register_object(obj: StorageObject, uploaded_at: datetime | None = None) -> Outcome:
    """Register, ignore or quarantine one object; safe to run twice and concurrently."""
    if obj.bucket != config.settings().bucket or not obj.name.startswith(storage.UPLOADS_PREFIX):
        log.info("not an upload: ignored", action="register_upload.ignored", bucket=obj.bucket)
        return "ignored"
    if obj.name.endswith("/"):
        log.info("folder placeholder: ignored", action="register_upload.ignored")
        return "ignored"
    owner = owner_and_file_name(obj.name)
    if owner is None:
        return quarantine(obj, "bad_path", "the name is not uploads/{user_id}/{file name}")
    user_id = owner[0]
    path = storage.bucket_path(obj.name)
    with db.transaction() as conn:
        existing = reference_images.get_by_path(conn, path)
        deleted = existing is None and reference_images.was_deleted(conn, path)
        ticket = limits.ticket(conn, path)
        known = ticket is not None or users.get(conn, user_id) is not None
    if existing is not None:
        log.info("already registered", action="register_upload.duplicate", image_id=existing["id"])
        return "duplicate"
    if deleted:
        return _deleted_by_owner()
    if not known:
        return quarantine(obj, "unknown_user", f"no user {user_id}")
    if ticket is None:
        return quarantine(obj, "no_ticket", "no upload under this name was allowed")
    if obj.size > ticket["file_size"]:
        message = f"{obj.size} bytes, and the upload allowed {ticket['file_size']}"
        return quarantine(obj, "exceeds_ticket", message)
    try:
        info = identify(obj.name, obj.size, obj.generation)
        data = storage.read(obj.name, generation=obj.generation)
        copy = store_working_copy(obj.name, data)
    except ImageRejected as rejected:
        return quarantine(obj, rejected.reason, rejected.message)
    except NotFound:
        log.info("the object generation is gone: nothing to do", action="register_upload.gone")
        return "gone"
    wanted = obj.metadata.get(SESSION_METADATA_KEY)
    row = record(
        obj.name,
        obj.size,
        info,
        user_id=user_id,
        session_id=as_uuid(wanted),
        working_copy_path=copy,
        uploaded_at=uploaded_at,
    )
    if row is None:
        with db.transaction() as conn:
            if reference_images.was_deleted(conn, storage.bucket_path(obj.name)):
                return _deleted_by_owner()
        return quarantine(obj, "unknown_user", f"no user {user_id}")
    if wanted and row["session_id"] is None:
        log.warning(
            "the session in the object's metadata is not the user's: registered without it",
            action="register_upload.foreign_session",
            session_id=wanted,
            user_id=user_id,
        )
    log.info(
        "registered" if row["created"] else "already registered",
        action="register_upload.registered" if row["created"] else "register_upload.duplicate",
        image_id=row["id"],
        mime_type=info.mime_type,
        bytes_read=info.bytes_read,
    )
    return "registered" if row["created"] else "duplicate"


def _deleted_by_owner() -> Outcome:
    log.info("deleted by its owner: not registered again", action="register_upload.deleted")
    return "gone"
