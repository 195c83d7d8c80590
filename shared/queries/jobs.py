"""Generation jobs and their links to reference images."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.db import Connection, execute, one, page, rows

# The parameters are shared/generation/parameters.py's JobParameters, defaults applied
# (tests/integration/test_schema.py holds this statement's parameters equal to its fields).
_CREATE = """
INSERT INTO generation_jobs
    (user_id, session_id, prompt, shot_type, camera_angle, style, location, lighting, weather,
     is_custom_enabled, aspect_ratio, number_of_shots, idempotency_key, request_hash, deadline_at,
     webhook, webhook_events)
VALUES
    (:user_id, :session_id, :prompt, :shot_type, :camera_angle, :style, :location, :lighting,
     :weather, :is_custom_enabled, :aspect_ratio, :number_of_shots, :idempotency_key,
     :request_hash, now() + make_interval(secs => :deadline_seconds),
     :webhook, CAST(:webhook_events AS text[]))
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


def create(
    conn: Connection,
    *,
    user_id: Any,
    session_id: Any,
    parameters: Mapping[str, Any],
    deadline_seconds: float,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    webhook: str | None = None,
    webhook_events: list[str] | None = None,
) -> dict[str, Any]:
    """Record a job `pending`; `parameters` are the job's (every one of them)."""
    row = one(
        conn,
        _CREATE,
        {
            **parameters,
            "user_id": user_id,
            "session_id": session_id,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "deadline_seconds": deadline_seconds,
            "webhook": webhook,
            "webhook_events": webhook_events,
        },
    )
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


# ---- Reads ---------------------------------------------------------------------------------

_GET = "SELECT * FROM generation_jobs WHERE id = :id"

_GET_BY_IDEMPOTENCY_KEY = """
SELECT * FROM generation_jobs WHERE user_id = :user_id AND idempotency_key = :idempotency_key
"""

_REFERENCES = """
SELECT ri.*
  FROM generation_job_reference_images gjri
  JOIN reference_images ri ON ri.id = gjri.reference_image_id
 WHERE gjri.generation_job_id = :job_id
 ORDER BY gjri.created_at, ri.id
"""

# A session's jobs, newest first, keyset on (created_at, id); `done` counts the recorded shots.
_LIST_FOR_SESSION = """
SELECT gj.*,
       (SELECT count(*) FROM generated_images gi WHERE gi.generation_job_id = gj.id) AS done,
       ARRAY(SELECT gjri.reference_image_id FROM generation_job_reference_images gjri
              WHERE gjri.generation_job_id = gj.id ORDER BY gjri.created_at, gjri.reference_image_id)
         AS reference_image_ids
  FROM generation_jobs gj
 WHERE gj.session_id = :session_id AND gj.user_id = :user_id
   AND (CAST(:status AS text) IS NULL OR gj.status = :status)
   AND (CAST(:after_created_at AS timestamptz) IS NULL
        OR (gj.created_at, gj.id) < (CAST(:after_created_at AS timestamptz), CAST(:after_id AS uuid)))
 ORDER BY gj.created_at DESC, gj.id DESC
 LIMIT :limit
"""


def get(conn: Connection, job_id: Any) -> dict[str, Any] | None:
    return one(conn, _GET, {"id": job_id})


def get_by_idempotency_key(conn: Connection, *, user_id: Any, key: str) -> dict[str, Any] | None:
    return one(conn, _GET_BY_IDEMPOTENCY_KEY, {"user_id": user_id, "idempotency_key": key})


def references(conn: Connection, job_id: Any) -> list[dict[str, Any]]:
    """The job's reference images, in the order they were linked."""
    return rows(conn, _REFERENCES, {"job_id": job_id})


def list_for_session(
    conn: Connection,
    *,
    session_id: Any,
    user_id: Any,
    limit: int,
    status: str | None = None,
    after: tuple[Any, Any] | None = None,
) -> list[dict[str, Any]]:
    """A page of a session's jobs; `after` is the (created_at, id) of the last row seen."""
    params = {"session_id": session_id, "user_id": user_id, "status": status}
    return page(conn, _LIST_FOR_SESSION, params, limit=limit, after=after, key="created_at")
