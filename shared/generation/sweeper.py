"""The `sweep_jobs` maintenance task: nothing stays pending, processing or unannounced for ever.

Every tick (Cloud Scheduler, every 5 minutes):
- an unfinished job past its deadline (JOB_DEADLINE_SECONDS after it was queued) fails;
- an unfinished job quiet for JOB_STALL_SECONDS with no live claim — its request was never
  published, its plan or a shot was dead-lettered, a worker died and its lease lapsed — is
  re-driven: a pending or half-planned job gets its generation request again, a dispatched
  one a render message per missing shot. After JOB_MAX_REDRIVES re-drives it fails instead;
- a finished job whose generation-events message is not out gets it (job_events.flush).
Each step is a compare-and-set, so a doubled or overlapping sweep does no harm.
"""

from __future__ import annotations

from typing import Any

from shared import config, db, log, pubsub
from shared.errors import AppError
from shared.generation import job_events
from shared.queries import job_runs

BATCH = 200


def sweep_jobs(stall_seconds: float | None = None) -> dict[str, Any]:
    """One sweep; returns what it did, for the log."""
    settings = config.settings()
    stall = settings.job_stall_seconds if stall_seconds is None else stall_seconds
    with db.transaction() as conn:
        stalled = job_runs.stalled(conn, stall_seconds=stall, limit=BATCH)
    failed = redriven = 0
    for job in stalled:
        if job["overdue"]:
            message = f"The job did not finish within {settings.job_deadline_seconds} s."
            failed += job_events.fail(job["id"], message, "deadline_exceeded")
        elif job["redrives"] >= settings.job_max_redrives:
            message = f"The job made no progress after {job['redrives']} re-drives."
            failed += job_events.fail(job["id"], message, "stalled")
        else:
            redriven += _redrive(job)
    with db.transaction() as conn:
        unannounced = job_runs.unpublished_events(conn, limit=BATCH)
    announced = sum(job_events.flush(job_id) for job_id in unannounced)
    return {"stalled": len(stalled), "failed": failed, "redriven": redriven, "events": announced}


def _redrive(job: dict[str, Any]) -> bool:
    """Publish what the job is waiting for again; False if it moved since the sweep read it."""
    with db.transaction() as conn:
        counted = job_runs.count_redrive(conn, job_id=job["id"], updated_at=job["updated_at"])
        missing = job_runs.missing_shots(conn, job["id"]) if counted else []
    if counted is None:
        return False
    topics = config.settings().topics
    try:
        if counted["status"] == "pending" or counted["dispatched_at"] is None:
            pubsub.publish(topics.generation_requests, {"job_id": str(job["id"])})
        else:
            payloads = [{"job_id": str(job["id"]), "index": i} for i in missing]
            pubsub.publish_many(topics.render_requests, payloads)
    except AppError as error:  # counted anyway: the next sweep tries again, within the limit
        log.warning(f"re-drive not published: {error.message}", action="sweep.publish_failed")
        return False
    log.info(
        "job re-driven",
        action="sweep.redriven",
        job_id=str(job["id"]),
        redrives=counted["redrives"],
        shots=missing,
    )
    return True
