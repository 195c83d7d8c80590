"""Reference images: uploads registered from the bucket, keyed by their bucket path."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from shared.db import one

# Idempotent on gcp_bucket_path: a duplicate registration returns the existing row.
_REGISTER = """
WITH inserted AS (
    INSERT INTO reference_images
        (user_id, session_id, gcp_bucket_path, gcp_url, file_name, file_size, mime_type, width, height)
    VALUES
        (:user_id, :session_id, :gcp_bucket_path, :gcp_url, :file_name, :file_size, :mime_type,
         :width, :height)
    ON CONFLICT (gcp_bucket_path) DO NOTHING
    RETURNING *, true AS created
)
SELECT * FROM inserted
UNION ALL
SELECT *, false AS created FROM reference_images WHERE gcp_bucket_path = :gcp_bucket_path
LIMIT 1
"""


def register(conn: Connection, **fields: Any) -> dict[str, Any]:
    """Insert the reference image, or return the row already registered for its bucket path.

    The result's `created` says which happened.
    """
    row = one(conn, _REGISTER, fields) or one(conn, _REGISTER, fields)
    assert row is not None
    return row
