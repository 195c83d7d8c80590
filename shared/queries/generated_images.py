"""Generated images: one row per (job, shot index)."""

from __future__ import annotations

from typing import Any

from shared.db import Connection, one, rows

# Idempotent on (job, index): a redelivered render returns the row the first attempt wrote.
_RECORD = """
WITH inserted AS (
    INSERT INTO generated_images
        (generation_job_id, user_id, session_id, gcp_bucket_path, gcp_url, thumbnail_url,
         file_name, file_size, mime_type, width, height, prompt_used, generation_index,
         generation_method, object_generation, thumbnail_generation)
    VALUES
        (:job_id, :user_id, :session_id, :gcp_bucket_path, :gcp_url, :thumbnail_url,
         :file_name, :file_size, :mime_type, :width, :height, :prompt_used, :generation_index,
         :generation_method, :object_generation, :thumbnail_generation)
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
# (ordering by index alone would interleave batches). Jobs come in order from
# generation_jobs_session_created_idx, each job's images from the (job, index) key, and an
# incremental sort orders each job's few images; the keyset is (job created_at, job id, index).
# The owner check is a one-time filter: another user's session yields no rows.
_GALLERY_PAGE = """
SELECT gi.*, gj.created_at AS job_created_at
  FROM generation_jobs gj
  JOIN generated_images gi ON gi.generation_job_id = gj.id
 WHERE gj.session_id = :session_id
   AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = :session_id AND s.user_id = :user_id)
   AND (CAST(:after_created_at AS timestamptz) IS NULL
        OR (gj.created_at, gj.id) < (CAST(:after_created_at AS timestamptz), CAST(:after_job_id AS uuid))
        OR ((gj.created_at, gj.id) = (CAST(:after_created_at AS timestamptz), CAST(:after_job_id AS uuid))
            AND gi.generation_index > :after_index))
 ORDER BY gj.created_at DESC, gj.id DESC, gi.generation_index ASC
 LIMIT :limit
"""

_LIST_FOR_JOB = """
SELECT * FROM generated_images WHERE generation_job_id = :job_id ORDER BY generation_index
"""

# Only an image of a finished job: a job missing a shot would never complete (and the sweeper
# would pay for the shot again). The job row is share-locked, so a retry that puts it back to
# pending waits for this delete, and its plan then sees the shot missing.
_DELETE_FINISHED = """
WITH finished AS (
    SELECT gj.id FROM generated_images gi
      JOIN generation_jobs gj ON gj.id = gi.generation_job_id
     WHERE gi.id = :id AND gi.user_id = :user_id
       AND gj.status IN ('completed', 'failed', 'cancelled')
       FOR SHARE OF gj
)
DELETE FROM generated_images
 WHERE id = :id AND generation_job_id = (SELECT id FROM finished)
RETURNING *
"""

_EXISTS_OWNED = "SELECT id FROM generated_images WHERE id = :id AND user_id = :user_id"

_AT_INDEX = """
SELECT * FROM generated_images WHERE generation_job_id = :job_id AND generation_index = :index
"""


def record(conn: Connection, **fields: Any) -> dict[str, Any]:
    """Insert the image of one shot, or return the one already recorded; `created` says which."""
    fields.setdefault("mime_type", "image/jpeg")
    for name in ("thumbnail_url", "object_generation", "thumbnail_generation"):
        fields.setdefault(name, None)
    row = one(conn, _RECORD, fields) or one(conn, _RECORD, fields)
    assert row is not None
    return row


def gallery_page(
    conn: Connection,
    *,
    session_id: Any,
    user_id: Any,
    limit: int,
    after: tuple[Any, Any, int] | None = None,
) -> list[dict[str, Any]]:
    """A page of the user's session's images (none when the session is not theirs); `after` is
    (job created_at, job id, index) of the last image seen."""
    after_created_at, after_job_id, after_index = after or (None, None, 0)
    return rows(
        conn,
        _GALLERY_PAGE,
        {
            "session_id": session_id,
            "user_id": user_id,
            "limit": limit,
            "after_created_at": after_created_at,
            "after_job_id": after_job_id,
            "after_index": after_index,
        },
    )


def list_for_job(conn: Connection, job_id: Any) -> list[dict[str, Any]]:
    """A job's images by shot index."""
    return rows(conn, _LIST_FOR_JOB, {"job_id": job_id})


def delete_finished(conn: Connection, *, image_id: Any, user_id: Any) -> dict[str, Any] | None:
    """Delete the user's image if its job has finished; None otherwise (see `exists_owned`)."""
    return one(conn, _DELETE_FINISHED, {"id": image_id, "user_id": user_id})


def exists_owned(conn: Connection, *, image_id: Any, user_id: Any) -> bool:
    return one(conn, _EXISTS_OWNED, {"id": image_id, "user_id": user_id}) is not None


def at_index(conn: Connection, *, job_id: Any, index: int) -> dict[str, Any] | None:
    return one(conn, _AT_INDEX, {"job_id": job_id, "index": index})
