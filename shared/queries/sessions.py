"""Sessions: a user's folders of work, with the count and thumbnail kept by triggers."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from shared.db import one, rows

_CREATE = """
INSERT INTO sessions (user_id, title) VALUES (:user_id, COALESCE(:title, 'New Session'))
RETURNING *
"""

_GET_OWNED = "SELECT * FROM sessions WHERE id = :id AND user_id = :user_id"

# The design's "sessions for a user with thumbnail", newest activity first. The thumbnail is a
# column the triggers maintain, so the list needs no per-row subquery; keyset on (updated_at, id).
_LIST_FOR_USER = """
SELECT s.*
  FROM sessions s
 WHERE s.user_id = :user_id
   AND (CAST(:after_updated_at AS timestamptz) IS NULL
        OR (s.updated_at, s.id) < (CAST(:after_updated_at AS timestamptz), CAST(:after_id AS uuid)))
 ORDER BY s.updated_at DESC, s.id DESC
 LIMIT :limit
"""


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
    after_updated_at, after_id = after or (None, None)
    return rows(
        conn,
        _LIST_FOR_USER,
        {
            "user_id": user_id,
            "limit": limit,
            "after_updated_at": after_updated_at,
            "after_id": after_id,
        },
    )
