"""Generated images: one row per (job, shot index)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from shared.db import one, rows

# Idempotent on (job, index): a redelivered render returns the row the first attempt wrote.
_RECORD = """
WITH inserted AS (
    INSERT INTO generated_images
        (generation_job_id, user_id, session_id, gcp_bucket_path, gcp_url, thumbnail_url,
         file_name, file_size, mime_type, width, height, prompt_used, generation_index,
         generation_method)
    VALUES
        (:job_id, :user_id, :session_id, :gcp_bucket_path, :gcp_url, :thumbnail_url,
         :file_name, :file_size, :mime_type, :width, :height, :prompt_used, :generation_index,
         :generation_method)
    ON CONFLICT (generation_job_id, generation_index) DO NOTHING
    RETURNING *, true AS created
)
SELECT * FROM inserted
UNION ALL
SELECT *, false AS created FROM generated_images
 WHERE generation_job_id = :job_id AND generation_index = :generation_index
LIMIT 1
"""

# The design's "generated images for a session": newest job first, then by index within a job
# (ordering by index alone would interleave batches).
_LIST_FOR_SESSION = """
SELECT gi.*
  FROM generated_images gi
  JOIN generation_jobs gj ON gj.id = gi.generation_job_id
 WHERE gi.session_id = :session_id AND gi.user_id = :user_id
 ORDER BY gj.created_at DESC, gj.id DESC, gi.generation_index ASC
 LIMIT :limit
"""

_LIST_FOR_JOB = """
SELECT * FROM generated_images WHERE generation_job_id = :job_id ORDER BY generation_index
"""

_DELETE_OWNED = "DELETE FROM generated_images WHERE id = :id AND user_id = :user_id RETURNING *"


def record(conn: Connection, **fields: Any) -> dict[str, Any]:
    """Insert the image of one shot, or return the one already recorded; `created` says which."""
    fields.setdefault("mime_type", "image/jpeg")
    fields.setdefault("thumbnail_url", None)
    row = one(conn, _RECORD, fields) or one(conn, _RECORD, fields)
    assert row is not None
    return row


def list_for_session(
    conn: Connection, *, session_id: Any, user_id: Any, limit: int = 100
) -> list[dict[str, Any]]:
    return rows(
        conn, _LIST_FOR_SESSION, {"session_id": session_id, "user_id": user_id, "limit": limit}
    )


def list_for_job(conn: Connection, job_id: Any) -> list[dict[str, Any]]:
    """A job's images by shot index."""
    return rows(conn, _LIST_FOR_JOB, {"job_id": job_id})


def delete_owned(conn: Connection, *, image_id: Any, user_id: Any) -> dict[str, Any] | None:
    return one(conn, _DELETE_OWNED, {"id": image_id, "user_id": user_id})
