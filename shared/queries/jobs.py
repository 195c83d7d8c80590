"""Generation jobs and their links to reference images."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from shared.db import execute, one

_CREATE = """
INSERT INTO generation_jobs
    (user_id, session_id, prompt, shot_type, camera_angle, style, location, lighting, weather,
     is_custom_enabled, aspect_ratio, number_of_shots, idempotency_key, request_hash)
VALUES
    (:user_id, :session_id, :prompt, :shot_type, :camera_angle, :style, :location, :lighting,
     :weather, COALESCE(:is_custom_enabled, false), COALESCE(:aspect_ratio, '1:1'),
     COALESCE(:number_of_shots, 1), :idempotency_key, :request_hash)
RETURNING *
"""

_LINK_REFERENCES = """
INSERT INTO generation_job_reference_images (generation_job_id, reference_image_id)
SELECT :job_id, r.id FROM reference_images r
 WHERE r.id = ANY(CAST(:reference_ids AS uuid[])) AND r.user_id = :user_id
ON CONFLICT (generation_job_id, reference_image_id) DO NOTHING
"""

# The design's "generation job with all reference images", owner-checked.
_GET_WITH_REFERENCES = """
SELECT gj.*,
       COALESCE(array_agg(ri.gcp_url ORDER BY gjri.created_at, ri.id)
                FILTER (WHERE ri.id IS NOT NULL), '{}') AS reference_image_urls
  FROM generation_jobs gj
  LEFT JOIN generation_job_reference_images gjri ON gj.id = gjri.generation_job_id
  LEFT JOIN reference_images ri ON gjri.reference_image_id = ri.id
 WHERE gj.id = :id AND gj.user_id = :user_id
 GROUP BY gj.id
"""

JOB_FIELDS = (
    "session_id",
    "prompt",
    "shot_type",
    "camera_angle",
    "style",
    "location",
    "lighting",
    "weather",
    "is_custom_enabled",
    "aspect_ratio",
    "number_of_shots",
    "idempotency_key",
    "request_hash",
)


def create(conn: Connection, *, user_id: Any, **fields: Any) -> dict[str, Any]:
    params = {name: fields.get(name) for name in JOB_FIELDS}
    row = one(conn, _CREATE, {"user_id": user_id, **params})
    assert row is not None
    return row


def link_references(
    conn: Connection, *, job_id: Any, user_id: Any, reference_ids: list[Any]
) -> int:
    """Link the caller's own reference images to the job; returns how many were linked."""
    return execute(
        conn,
        _LINK_REFERENCES,
        {"job_id": job_id, "user_id": user_id, "reference_ids": [str(r) for r in reference_ids]},
    )


def get_with_references(conn: Connection, *, job_id: Any, user_id: Any) -> dict[str, Any] | None:
    return one(conn, _GET_WITH_REFERENCES, {"id": job_id, "user_id": user_id})
