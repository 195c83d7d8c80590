"""The generation-events topic: a job's finish (completed, failed, cancelled), and for a job
whose webhook asks for them, its start and each image recorded. deliver_webhooks reads them
all (shared/webhooks/); every message names its `event` (also an attribute).

Finish. The UPDATE that finishes a job also takes the publication's lease
(`event_lease_until`), so only the transition that won publishes, after its commit, and then
marks the job published.
If it dies in between (or the publish fails), the lease lapses and `flush` — run by the
sweeper, and by any handler that meets the finished job — publishes it once. Consumers may
still see a repeat if a publisher dies between publishing and marking: `event_id` is stable
for one finish, so they can drop it.

Message: {"event": "finished", "event_id", "job_id", "user_id", "session_id", "status",
"error_message", "error_code", "number_of_shots", "generation_method", "model_used",
"finished_at"}; attributes `event` and `status`.

Start and images: {"event": "started", "job_id", "started_at"} from plan_generation before it
publishes the renders, {"event": "image", "job_id", "index"} from render_image after the shot's
commit. A failed publish raises, so the message that led to it is redelivered and publishes it
again (a repeat is one webhook message: deliver_webhooks keys them by event).
"""

from __future__ import annotations

from typing import Any

from shared import config, db, log, pubsub
from shared.errors import AppError
from shared.queries import job_runs

EVENT_LEASE_SECONDS = 30.0


def message(job: dict[str, Any]) -> dict[str, Any]:
    finished_at = job["completed_at"]
    return {
        "event": "finished",
        "event_id": f"{job['id']}:{finished_at.isoformat()}",
        "job_id": str(job["id"]),
        "user_id": str(job["user_id"]),
        "session_id": str(job["session_id"]) if job["session_id"] else None,
        "status": job["status"],
        "error_message": job["error_message"],
        "error_code": job["error_code"],
        "number_of_shots": job["number_of_shots"],
        "generation_method": job["generation_method"],
        "model_used": job["model_used"],
        "finished_at": finished_at.isoformat(),
    }


def publish_finished(job: dict[str, Any]) -> bool:
    """Publish the event of a finish whose lease the caller holds, then mark it published.

    A failure is logged, not raised: the finish is committed, and the sweeper publishes the
    event once the lease lapses.
    """
    try:
        pubsub.publish(
            config.settings().topics.generation_events,
            message(job),
            event="finished",
            status=job["status"],
        )
        with db.transaction() as conn:
            job_runs.mark_event_published(conn, job["id"])
    except AppError as error:
        log.warning(
            f"finish event not published yet: {error.message}",
            action="generation.event_deferred",
            job_id=str(job["id"]),
        )
        return False
    log.info(
        f"job {job['status']}",
        action="generation.finished",
        job_id=str(job["id"]),
        status=job["status"],
    )
    return True


def flush(job_id: Any) -> bool:
    """Publish a finished job's event if nobody did and nobody is doing it; True if sent."""
    with db.transaction() as conn:
        job = job_runs.claim_event(conn, job_id=job_id, event_lease_seconds=EVENT_LEASE_SECONDS)
    return job is not None and publish_finished(job)


def fail(job_id: Any, error_message: str, error_code: str) -> bool:
    """Fail an unfinished job with a message for its owner and a stable code; True if this call
    failed it."""
    with db.transaction() as conn:
        job = job_runs.fail(
            conn,
            job_id=job_id,
            error_message=error_message,
            error_code=error_code,
            event_lease_seconds=EVENT_LEASE_SECONDS,
        )
    if job is None:
        return False
    log.warning(
        f"job failed: {error_message}",
        action="generation.failed",
        job_id=str(job_id),
        code=error_code,
    )
    publish_finished(job)
    return True


def wants(job: dict[str, Any], event: str) -> bool:
    """Whether the job's webhook asks for `event` (started, image, completed)."""
    return job["webhook"] is not None and event in (job["webhook_events"] or ())


def publish_started(job: dict[str, Any]) -> None:
    """Announce a started job to its webhook, if it wants that; a failure raises (Transient)."""
    if wants(job, "started"):
        payload = {"event": "started", "job_id": str(job["id"]), "started_at": job["started_at"]}
        pubsub.publish(config.settings().topics.generation_events, payload, event="started")


def publish_image(job: dict[str, Any], index: int) -> None:
    """Announce a recorded image to the job's webhook, if it wants that; a failure raises."""
    if wants(job, "image"):
        payload = {"event": "image", "job_id": str(job["id"]), "index": index}
        pubsub.publish(config.settings().topics.generation_events, payload, event="image")
