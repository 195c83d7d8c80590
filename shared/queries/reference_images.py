"""Reference images: uploads registered from the bucket, keyed by their bucket path."""

from __future__ import annotations

from typing import Any

from shared.db import Connection, one, page, rows

# Idempotent on gcp_bucket_path: a duplicate registration returns the existing row. The row is
# only inserted for a user that exists (no row at all otherwise), and the session is linked only
# when that user owns it (NULL otherwise); `uploaded_at` defaults to now().
_REGISTER = """
WITH inserted AS (
    INSERT INTO reference_images
        (user_id, session_id, gcp_bucket_path, gcp_url, file_name, file_size, mime_type, width,
         height, working_copy_path, uploaded_at)
    SELECT u.id,
           (SELECT s.id FROM sessions s
             WHERE s.id = CAST(:session_id AS uuid) AND s.user_id = u.id),
           :gcp_bucket_path, :gcp_url, :file_name, :file_size, :mime_type, :width, :height,
           :working_copy_path, COALESCE(CAST(:uploaded_at AS timestamptz), now())
      FROM users u
     WHERE u.id = CAST(:user_id AS uuid)
       AND NOT EXISTS (SELECT 1 FROM deleted_reference_images d
                        WHERE d.gcp_bucket_path = :gcp_bucket_path)
    ON CONFLICT (gcp_bucket_path) DO NOTHING
    RETURNING *, true AS created
)
SELECT * FROM inserted
UNION ALL
SELECT *, false AS created FROM reference_images WHERE gcp_bucket_path = :gcp_bucket_path
LIMIT 1
"""

_GET_BY_PATH = "SELECT * FROM reference_images WHERE gcp_bucket_path = :gcp_bucket_path"

_GET_OWNED = "SELECT * FROM reference_images WHERE id = :id AND user_id = :user_id"

# Newest first, keyset on (uploaded_at, id): the index reference_images_user_uploaded_idx.
_LIST_FOR_USER = """
SELECT r.*
  FROM reference_images r
 WHERE r.user_id = :user_id
   AND (CAST(:after_uploaded_at AS timestamptz) IS NULL
        OR (r.uploaded_at, r.id) < (CAST(:after_uploaded_at AS timestamptz), CAST(:after_id AS uuid)))
 ORDER BY r.uploaded_at DESC, r.id DESC
 LIMIT :limit
"""

# The row goes and its path is tombstoned in the same statement (see deleted_reference_images).
_DELETE_OWNED = """
WITH deleted AS (
    DELETE FROM reference_images WHERE id = :id AND user_id = :user_id RETURNING *
), tombstone AS (
    INSERT INTO deleted_reference_images (gcp_bucket_path)
    SELECT gcp_bucket_path FROM deleted
    ON CONFLICT (gcp_bucket_path) DO NOTHING
)
SELECT * FROM deleted
"""

# The working copy of a reference registered before working copies existed, made on first use;
# no row: the reference is gone (a concurrent maker writes the same name, so either may win).
_SET_WORKING_COPY = """
UPDATE reference_images SET working_copy_path = :working_copy_path
 WHERE gcp_bucket_path = :gcp_bucket_path
RETURNING id
"""

_IS_DELETED = "SELECT 1 AS deleted FROM deleted_reference_images WHERE gcp_bucket_path = :path"

# Which of a batch of bucket paths have no row yet (one query per reconcile batch).
_UNREGISTERED = """
SELECT p.path
  FROM unnest(CAST(:paths AS text[])) AS p(path)
 WHERE NOT EXISTS (SELECT 1 FROM reference_images r WHERE r.gcp_bucket_path = p.path)
   AND NOT EXISTS (SELECT 1 FROM deleted_reference_images d WHERE d.gcp_bucket_path = p.path)
"""

REGISTER_FIELDS = (
    "user_id",
    "session_id",
    "gcp_bucket_path",
    "gcp_url",
    "file_name",
    "file_size",
    "mime_type",
    "width",
    "height",
    "working_copy_path",
    "uploaded_at",
)


def register(conn: Connection, **fields: Any) -> dict[str, Any] | None:
    """Insert the reference image, or return the row already registered for its bucket path.

    The result's `created` says which happened; None means the user does not exist or the
    owner deleted this path already (`was_deleted` tells which).
    """
    params = {name: fields.get(name) for name in REGISTER_FIELDS}
    params["user_id"] = str(params["user_id"])
    if params["session_id"] is not None:
        params["session_id"] = str(params["session_id"])
    # A concurrent registration that commits after this statement's snapshot is seen by a rerun.
    return one(conn, _REGISTER, params) or one(conn, _REGISTER, params)


def get_by_path(conn: Connection, gcp_bucket_path: str) -> dict[str, Any] | None:
    return one(conn, _GET_BY_PATH, {"gcp_bucket_path": gcp_bucket_path})


def get_owned(conn: Connection, *, image_id: Any, user_id: Any) -> dict[str, Any] | None:
    return one(conn, _GET_OWNED, {"id": image_id, "user_id": user_id})


def list_for_user(
    conn: Connection, *, user_id: Any, limit: int, after: tuple[Any, Any] | None = None
) -> list[dict[str, Any]]:
    """A page of the user's references; `after` is the (uploaded_at, id) of the last row seen."""
    params = {"user_id": user_id}
    return page(conn, _LIST_FOR_USER, params, limit=limit, after=after, key="uploaded_at")


def delete_owned(conn: Connection, *, image_id: Any, user_id: Any) -> dict[str, Any] | None:
    return one(conn, _DELETE_OWNED, {"id": image_id, "user_id": user_id})


def set_working_copy(conn: Connection, *, gcp_bucket_path: str, working_copy_path: str) -> bool:
    """Name the reference's working copy; False when the reference is gone."""
    params = {"gcp_bucket_path": gcp_bucket_path, "working_copy_path": working_copy_path}
    return one(conn, _SET_WORKING_COPY, params) is not None


def was_deleted(conn: Connection, gcp_bucket_path: str) -> bool:
    """True when the owner deleted the reference image at this path."""
    return one(conn, _IS_DELETED, {"path": gcp_bucket_path}) is not None


def unregistered(conn: Connection, paths: list[str]) -> set[str]:
    """The bucket paths among `paths` that no row has and no owner deleted."""
    return {r["path"] for r in rows(conn, _UNREGISTERED, {"paths": paths})}
