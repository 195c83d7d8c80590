"""Sessions: a user's folders of work, with the count and thumbnail kept by triggers."""

from __future__ import annotations

from typing import Any

from shared.db import Connection, execute, one, page, rows

# Every read of a session carries the thumbnail image's own small version (when the render
# made one) beside the session's thumbnail_url: one primary-key join, no per-row subquery.
_WITH_THUMBNAIL = """
SELECT s.*, gi.thumbnail_url AS thumbnail_small_url
  FROM {source} s
  LEFT JOIN generated_images gi ON gi.id = s.thumbnail_image_id
"""

_CREATE = """
INSERT INTO sessions (user_id, title) VALUES (:user_id, COALESCE(:title, 'New Session'))
RETURNING *
"""

_GET_OWNED = (
    _WITH_THUMBNAIL.format(source="sessions") + " WHERE s.id = :id AND s.user_id = :user_id"
)

# The design's "sessions for a user with thumbnail", newest activity first. The thumbnail is a
# column the triggers maintain, so the list needs no per-row subquery; keyset on (updated_at, id)
# over sessions_user_updated_idx.
_LIST_FOR_USER = (
    _WITH_THUMBNAIL.format(source="sessions")
    + """
 WHERE s.user_id = :user_id
   AND (CAST(:after_updated_at AS timestamptz) IS NULL
        OR (s.updated_at, s.id) < (CAST(:after_updated_at AS timestamptz), CAST(:after_id AS uuid)))
 ORDER BY s.updated_at DESC, s.id DESC
 LIMIT :limit
"""
)

_RENAME = """
WITH renamed AS (
    UPDATE sessions SET title = :title WHERE id = :id AND user_id = :user_id RETURNING *
)""" + _WITH_THUMBNAIL.format(source="renamed")

# Locks the session against new images (their foreign-key check and count trigger wait for the
# lock), so the object names read after it are all the session will ever have.
_LOCK_OWNED = "SELECT id FROM sessions WHERE id = :id AND user_id = :user_id FOR UPDATE"

# Two indexed branches (an OR with a subquery would scan the whole table).
_OBJECTS = """
SELECT gi.gcp_bucket_path, gi.thumbnail_url, gi.object_generation, gi.thumbnail_generation
  FROM generated_images gi
 WHERE gi.session_id = :id
UNION
SELECT gi.gcp_bucket_path, gi.thumbnail_url, gi.object_generation, gi.thumbnail_generation
  FROM generation_jobs j
  JOIN generated_images gi ON gi.generation_job_id = j.id
 WHERE j.session_id = :id
"""

_DELETE = "DELETE FROM sessions WHERE id = :id"


def create(conn: Connection, *, user_id: Any, title: str | None = None) -> dict[str, Any]:
    row = one(conn, _CREATE, {"user_id": user_id, "title": title})
    assert row is not None
    return row


def get_owned(conn: Connection, *, session_id: Any, user_id: Any) -> dict[str, Any] | None:
    return one(conn, _GET_OWNED, {"id": session_id, "user_id": user_id})


def list_for_user(
    conn: Connection, *, user_id: Any, limit: int, after: tuple[Any, Any] | None = None
) -> list[dict[str, Any]]:
    """A page of the user's sessions; `after` is the (updated_at, id) of the last row seen."""
    params = {"user_id": user_id}
    return page(conn, _LIST_FOR_USER, params, limit=limit, after=after, key="updated_at")


def rename(conn: Connection, *, session_id: Any, user_id: Any, title: str) -> dict[str, Any] | None:
    return one(conn, _RENAME, {"id": session_id, "user_id": user_id, "title": title})


def lock_owned(conn: Connection, *, session_id: Any, user_id: Any) -> bool:
    """Lock the caller's session for deletion; False when it is not theirs (or not there)."""
    return one(conn, _LOCK_OWNED, {"id": session_id, "user_id": user_id}) is not None


def objects(conn: Connection, *, session_id: Any) -> list[dict[str, Any]]:
    """The object names and generations of every generated image in the session."""
    return rows(conn, _OBJECTS, {"id": session_id})


def delete(conn: Connection, *, session_id: Any) -> None:
    """Delete a session locked by `lock_owned`; jobs and images go by cascade."""
    execute(conn, _DELETE, {"id": session_id})
