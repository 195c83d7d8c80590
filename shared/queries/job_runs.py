"""A job's run: claims on its plan and shots, its state transitions, the outbox of its finish
event and the sweeper's scans. Every change is one compare-and-set statement."""

from __future__ import annotations

from typing import Any

from shared.db import Connection, one, rows

# ---- Claims: compare-and-set on a lease key ("plan" or a shot index) -------------------------

_LEASE_FREE = "COALESCE(CAST(leases -> :key ->> 'until' AS timestamptz), '-infinity') < now()"
_TAKE_LEASE = """leases = leases || jsonb_build_object(CAST(:key AS text), jsonb_build_object(
    'token', CAST(:token AS text), 'until', now() + make_interval(secs => :seconds)))"""

# The plan is claimable while pending, or while processing but not yet dispatched (a partial plan).
_CLAIM_PLAN = f"""
UPDATE generation_jobs SET {_TAKE_LEASE}
 WHERE id = :id AND {_LEASE_FREE}
   AND (status = 'pending' OR (status = 'processing' AND dispatched_at IS NULL))
RETURNING *
"""

_CLAIM_SHOT = f"""
UPDATE generation_jobs j SET {_TAKE_LEASE}
 WHERE j.id = :id AND j.status = 'processing' AND CAST(:index AS integer) <= j.number_of_shots
   AND {_LEASE_FREE}
   AND NOT EXISTS (SELECT 1 FROM generated_images gi
                    WHERE gi.generation_job_id = j.id AND gi.generation_index = :index)
RETURNING j.*,
    (SELECT COALESCE(jsonb_agg(jsonb_build_object('file_name', ri.file_name,
                'gcp_bucket_path', ri.gcp_bucket_path, 'mime_type', ri.mime_type,
                'working_copy_path', ri.working_copy_path)
                ORDER BY gjri.created_at, ri.id), '[]')
       FROM generation_job_reference_images gjri
       JOIN reference_images ri ON ri.id = gjri.reference_image_id
      WHERE gjri.generation_job_id = j.id) AS reference_files
"""

_RENEW = """
UPDATE generation_jobs
   SET leases = jsonb_set(leases, ARRAY[CAST(:key AS text), 'until'],
                          to_jsonb(now() + make_interval(secs => :seconds)))
 WHERE id = :id AND leases -> :key ->> 'token' = :token
RETURNING id
"""

_RELEASE = """
UPDATE generation_jobs SET leases = leases - CAST(:key AS text)
 WHERE id = :id AND leases -> :key ->> 'token' = :token
RETURNING id
"""

# ---- Transitions ---------------------------------------------------------------------------

_START = """
UPDATE generation_jobs
   SET status = 'processing', started_at = now(), generated_prompt = :generated_prompt
 WHERE id = :id AND status = 'pending' AND leases -> 'plan' ->> 'token' = :token
RETURNING *
"""

_MARK_DISPATCHED = """
UPDATE generation_jobs SET dispatched_at = now(), leases = leases - 'plan'
 WHERE id = :id AND status = 'processing' AND leases -> 'plan' ->> 'token' = :token
RETURNING *
"""

_LOCK = "SELECT * FROM generation_jobs WHERE id = :id FOR UPDATE"

# What finishes a job also takes the publication of its generation-events message for a moment.
_FINISH = """event_lease_until = now() + make_interval(secs => :event_lease_seconds),
       event_published_at = NULL, completed_at = now(), leases = '{}'"""

# Run under the job's row lock (see `lock`), after recording a shot: completes the job when
# every shot is recorded. The method and model say what really produced the images.
_COMPLETE_IF_DONE = f"""
WITH made AS (
    SELECT count(*) AS images, count(DISTINCT generation_method) AS methods,
           min(generation_method) AS method
      FROM generated_images WHERE generation_job_id = :id
)
UPDATE generation_jobs j
   SET status = 'completed', {_FINISH},
       generation_method = CASE WHEN made.methods > 1 THEN 'mixed' ELSE made.method END,
       model_used = CASE WHEN made.methods > 1 THEN :openai_model || ' + ' || :fallback_model
                         WHEN made.method = 'openai' THEN :openai_model
                         ELSE :fallback_model END
  FROM made
 WHERE j.id = :id AND j.status = 'processing' AND made.images >= j.number_of_shots
RETURNING j.*
"""

_FAIL = f"""
UPDATE generation_jobs
   SET status = 'failed', error_message = :error_message, error_code = :error_code, {_FINISH}
 WHERE id = :id AND status IN ('pending', 'processing')
RETURNING *
"""

_CANCEL = f"""
UPDATE generation_jobs SET status = 'cancelled', {_FINISH}
 WHERE id = :id AND user_id = :user_id AND status IN ('pending', 'processing')
RETURNING *
"""

# A failed or cancelled job is queued again once its finish event is out; recorded shots stay.
_RETRY = """
UPDATE generation_jobs
   SET status = 'pending', error_message = NULL, error_code = NULL, started_at = NULL,
       completed_at = NULL,
       dispatched_at = NULL, leases = '{}', redrives = 0, generation_method = NULL,
       model_used = NULL, event_lease_until = NULL, event_published_at = NULL,
       deadline_at = now() + make_interval(secs => :deadline_seconds)
 WHERE id = :id AND user_id = :user_id AND status IN ('failed', 'cancelled')
   AND event_published_at IS NOT NULL
RETURNING *
"""

# ---- The generation-events outbox -----------------------------------------------------------

_CLAIM_EVENT = """
UPDATE generation_jobs
   SET event_lease_until = now() + make_interval(secs => :event_lease_seconds)
 WHERE id = :id AND status IN ('completed', 'failed', 'cancelled') AND event_published_at IS NULL
   AND COALESCE(event_lease_until, '-infinity') < now()
RETURNING *
"""

_MARK_EVENT_PUBLISHED = """
UPDATE generation_jobs SET event_published_at = now()
 WHERE id = :id AND event_published_at IS NULL
RETURNING id
"""

_UNPUBLISHED_EVENTS = """
SELECT id FROM generation_jobs
 WHERE event_published_at IS NULL AND status IN ('completed', 'failed', 'cancelled')
   AND COALESCE(event_lease_until, '-infinity') < now()
 ORDER BY completed_at LIMIT :limit
"""

# ---- The sweeper -----------------------------------------------------------------------------

# Unfinished jobs past their deadline, or quiet for `stall_seconds` (no claim, heartbeat or
# transition) with no live lease; `overdue` says which.
_STALLED = """
SELECT j.*, j.deadline_at < now() AS overdue
  FROM generation_jobs j
 WHERE j.status IN ('pending', 'processing')
   AND (j.deadline_at < now()
        OR (j.updated_at < now() - make_interval(secs => :stall_seconds)
            AND NOT EXISTS (SELECT 1 FROM jsonb_each(j.leases) AS l(key, value)
                             WHERE CAST(l.value ->> 'until' AS timestamptz) >= now())))
 ORDER BY j.updated_at LIMIT :limit
"""

# Counts a re-drive; a job re-driven since the sweep read it (updated_at moved) is left alone.
_COUNT_REDRIVE = """
UPDATE generation_jobs SET redrives = redrives + 1
 WHERE id = :id AND status IN ('pending', 'processing') AND updated_at = :updated_at
RETURNING *
"""

_MISSING_SHOTS = """
SELECT i AS index FROM generate_series(1, (SELECT number_of_shots FROM generation_jobs
                                            WHERE id = :id)) AS i
 WHERE NOT EXISTS (SELECT 1 FROM generated_images gi
                    WHERE gi.generation_job_id = :id AND gi.generation_index = i)
 ORDER BY i
"""


def _lease(job_id: Any, key: str | int, token: str, seconds: float) -> dict[str, Any]:
    return {"id": job_id, "key": str(key), "token": token, "seconds": seconds}


def claim_plan(
    conn: Connection, *, job_id: Any, token: str, seconds: float
) -> dict[str, Any] | None:
    return one(conn, _CLAIM_PLAN, _lease(job_id, "plan", token, seconds))


def claim_shot(
    conn: Connection, *, job_id: Any, index: int, token: str, seconds: float
) -> dict[str, Any] | None:
    """The job with the shot's claim taken, and its `reference_files`; None if not claimable."""
    return one(conn, _CLAIM_SHOT, {**_lease(job_id, index, token, seconds), "index": index})


def renew(conn: Connection, *, job_id: Any, key: str | int, token: str, seconds: float) -> bool:
    return one(conn, _RENEW, _lease(job_id, key, token, seconds)) is not None


def release(conn: Connection, *, job_id: Any, key: str | int, token: str) -> bool:
    return one(conn, _RELEASE, {"id": job_id, "key": str(key), "token": token}) is not None


def start(
    conn: Connection, *, job_id: Any, token: str, generated_prompt: str
) -> dict[str, Any] | None:
    return one(conn, _START, {"id": job_id, "token": token, "generated_prompt": generated_prompt})


def mark_dispatched(conn: Connection, *, job_id: Any, token: str) -> dict[str, Any] | None:
    return one(conn, _MARK_DISPATCHED, {"id": job_id, "token": token})


def lock(conn: Connection, job_id: Any) -> dict[str, Any] | None:
    """The job, locked until the transaction ends: shot recorders serialise on it."""
    return one(conn, _LOCK, {"id": job_id})


def complete_if_done(
    conn: Connection,
    *,
    job_id: Any,
    openai_model: str,
    fallback_model: str,
    event_lease_seconds: float,
) -> dict[str, Any] | None:
    params = {"id": job_id, "openai_model": openai_model, "fallback_model": fallback_model}
    return one(conn, _COMPLETE_IF_DONE, {**params, "event_lease_seconds": event_lease_seconds})


def fail(
    conn: Connection,
    *,
    job_id: Any,
    error_message: str,
    error_code: str,
    event_lease_seconds: float,
) -> dict[str, Any] | None:
    params = {"id": job_id, "error_message": error_message, "error_code": error_code}
    return one(conn, _FAIL, {**params, "event_lease_seconds": event_lease_seconds})


def cancel(
    conn: Connection, *, job_id: Any, user_id: Any, event_lease_seconds: float
) -> dict[str, Any] | None:
    params = {"id": job_id, "user_id": user_id, "event_lease_seconds": event_lease_seconds}
    return one(conn, _CANCEL, params)


def retry(
    conn: Connection, *, job_id: Any, user_id: Any, deadline_seconds: float
) -> dict[str, Any] | None:
    params = {"id": job_id, "user_id": user_id, "deadline_seconds": deadline_seconds}
    return one(conn, _RETRY, params)


def claim_event(
    conn: Connection, *, job_id: Any, event_lease_seconds: float
) -> dict[str, Any] | None:
    return one(conn, _CLAIM_EVENT, {"id": job_id, "event_lease_seconds": event_lease_seconds})


def mark_event_published(conn: Connection, job_id: Any) -> bool:
    return one(conn, _MARK_EVENT_PUBLISHED, {"id": job_id}) is not None


def unpublished_events(conn: Connection, *, limit: int) -> list[Any]:
    return [r["id"] for r in rows(conn, _UNPUBLISHED_EVENTS, {"limit": limit})]


def stalled(conn: Connection, *, stall_seconds: float, limit: int) -> list[dict[str, Any]]:
    return rows(conn, _STALLED, {"stall_seconds": stall_seconds, "limit": limit})


def count_redrive(conn: Connection, *, job_id: Any, updated_at: Any) -> dict[str, Any] | None:
    return one(conn, _COUNT_REDRIVE, {"id": job_id, "updated_at": updated_at})


def missing_shots(conn: Connection, job_id: Any) -> list[int]:
    return [r["index"] for r in rows(conn, _MISSING_SHOTS, {"id": job_id})]
