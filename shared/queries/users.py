"""Users: one row per identity-provider subject."""

from __future__ import annotations

from typing import Any

from shared.db import Connection, one

_GET_OR_CREATE = """
WITH inserted AS (
    INSERT INTO users (auth_subject, email, display_name)
    VALUES (:auth_subject, :email, :display_name)
    ON CONFLICT (auth_subject) DO NOTHING
    RETURNING *
)
SELECT * FROM inserted
UNION ALL
SELECT * FROM users WHERE auth_subject = :auth_subject
LIMIT 1
"""

_GET = "SELECT * FROM users WHERE id = :id"


def get_or_create(
    conn: Connection, *, auth_subject: str, email: str | None, display_name: str | None
) -> dict[str, Any]:
    """The user with this subject, created on first sight. Safe under concurrent first calls."""
    params = {"auth_subject": auth_subject, "email": email, "display_name": display_name}
    row = one(conn, _GET_OR_CREATE, params)
    if row is None:
        # A concurrent first call inserted the row after this statement's snapshot: read it now.
        row = one(conn, _GET_OR_CREATE, params)
    assert row is not None
    return row


def get(conn: Connection, user_id: Any) -> dict[str, Any] | None:
    return one(conn, _GET, {"id": user_id})
