"""The job service behind the generation routes: record and queue a job, cancel, retry, and a
job as the API shows it.

Creating a job counts it against the user's limits (shared/limits: a 429 past one), records
it `pending` with its reference links (and a "New Session" if none is named) in one
transaction, then publishes {"job_id"} to generation-requests; the same Idempotency-Key and
body answer the same job, another body a 409. A request that cannot be published after its job
is recorded is not lost: the sweeper re-drives pending jobs. A retry counts as a job asking for
its missing shots. Another user's ids answer 404, in paths and in bodies alike.
"""

from __future__ import annotations

import uuid
from typing import Any

from shared import config, db, log, outbound, pubsub
from shared.db import ConstraintViolation
from shared.errors import Conflict, NotFound, Transient
from shared.generation import job_events
from shared.generation.models import GenerationRequest, Job, JobFields
from shared.limits import service as limits
from shared.queries import generated_images, job_runs, jobs, sessions, webhooks
from shared.vocabulary import FINISHED_STATUSES
from shared.web import resources
from shared.web.waits import etag

IDEMPOTENCY_INDEX = "generation_jobs_user_idempotency_key_idx"
# The shape of `job_resource`, GET /v1/generations/{id}'s model, for capabilities that show a job.
JobResource = Job


def create(
    user_id: Any, request: GenerationRequest, idempotency_key: str | None = None
) -> tuple[dict[str, Any], bool, dict[str, str]]:
    """Record and queue a job; returns (job, replayed, the RateLimit headers)."""
    fingerprint = request.fingerprint()
    if request.webhook is not None:
        allow_loopback_http = config.settings().webhooks.allow_loopback_http
        outbound.check(request.webhook, allow_loopback_http=allow_loopback_http)
    try:
        with db.transaction() as conn:
            earlier = None
            if idempotency_key is not None:
                earlier = jobs.get_by_idempotency_key(conn, user_id=user_id, key=idempotency_key)
            if earlier is None:
                limits.admit_job(conn, user_id, request.number_of_shots)
                job = _record(conn, user_id, request, idempotency_key, fingerprint)
            rate = limits.headers(conn, user_id, limits.JOBS)
    except ConstraintViolation as violation:
        if violation.constraint != IDEMPOTENCY_INDEX or idempotency_key is None:
            raise
        with db.transaction() as conn:  # a concurrent request with the key won the insert
            earlier = jobs.get_by_idempotency_key(conn, user_id=user_id, key=idempotency_key)
            rate = limits.headers(conn, user_id, limits.JOBS)
        assert earlier is not None
    if earlier is not None:
        return _replay(earlier, fingerprint), True, rate
    queue(job["id"])
    return job, False, rate


def _record(
    conn: Any, user_id: Any, request: GenerationRequest, key: str | None, fingerprint: str
) -> dict[str, Any]:
    if request.session_id is None:
        session_id = sessions.create(conn, user_id=user_id)["id"]
    elif sessions.get_owned(conn, session_id=request.session_id, user_id=user_id) is None:
        raise NotFound("no such session", details={"session_id": request.session_id})
    else:
        session_id = request.session_id
    job = jobs.create(
        conn,
        user_id=user_id,
        session_id=session_id,
        parameters=request.columns(),
        idempotency_key=key,
        request_hash=fingerprint,
        deadline_seconds=config.settings().job_deadline_seconds,
        webhook=request.webhook,
        webhook_events=request.wanted_events(),
    )
    if request.webhook is not None:
        webhooks.ensure_secret(conn, user_id=user_id)  # so that every delivery can be signed
    wanted = sorted({r.lower() for r in request.reference_image_ids})
    if wanted:
        linked = jobs.link_references(conn, job_id=job["id"], user_id=user_id, reference_ids=wanted)
        if linked != len(wanted):
            raise NotFound(
                "a reference image does not exist", details={"reference_image_ids": wanted}
            )
    return job


def _replay(earlier: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    if earlier["request_hash"] != fingerprint:
        raise Conflict(
            "this Idempotency-Key was used with another request body", code="idempotency_key_reused"
        )
    return earlier


def queue(job_id: Any) -> None:
    """Publish the generation request; if that fails the sweeper re-drives the pending job."""
    try:
        pubsub.publish(config.settings().topics.generation_requests, {"job_id": str(job_id)})
    except Transient as error:
        log.warning(f"queued later by the sweeper: {error.message}", action="generation.unqueued")


def owned(conn: Any, job_id: str, user_id: Any) -> dict[str, Any]:
    """The caller's job, or 404 (also for another user's and for malformed ids)."""
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise NotFound("no such generation") from None
    job = jobs.get_with_references(conn, job_id=job_id, user_id=user_id)
    if job is None:
        raise NotFound("no such generation")
    return job


def cancel(job_id: str, user_id: Any) -> dict[str, Any]:
    with db.transaction() as conn:
        job = job_runs.cancel(
            conn,
            job_id=owned(conn, job_id, user_id)["id"],
            user_id=user_id,
            event_lease_seconds=job_events.EVENT_LEASE_SECONDS,
        )
        current = job or owned(conn, job_id, user_id)
    if job is None:
        raise Conflict(f"a {current['status']} job cannot be cancelled", code="invalid_state")
    job_events.publish_finished(job)
    return job


def retry(job_id: str, user_id: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Queue a failed or cancelled job again; returns (job, the RateLimit headers)."""
    with db.transaction() as conn:
        current = owned(conn, job_id, user_id)
    finished = current["status"] in ("failed", "cancelled")
    if finished and current["event_published_at"] is None:
        job_events.flush(current["id"])  # its finish is announced before it runs again
    with db.transaction() as conn:
        if finished:  # anything else is a 409 below, whatever the limits say
            limits.admit_job(conn, user_id, len(job_runs.missing_shots(conn, current["id"])))
        job = job_runs.retry(
            conn,
            job_id=current["id"],
            user_id=user_id,
            deadline_seconds=config.settings().job_deadline_seconds,
        )
        if job is None:  # raised here, so that what was admitted is rolled back
            current = owned(conn, job_id, user_id)
            if current["status"] in ("failed", "cancelled"):
                raise Conflict("the job is still finishing; try again shortly", code="finishing")
            raise Conflict(f"a {current['status']} job cannot be retried", code="invalid_state")
        rate = limits.headers(conn, user_id, limits.JOBS)
    queue(job["id"])
    return job, rate


def job_state(job_id: Any) -> dict[str, Any]:
    """The rows a job's resource shows, read in one short transaction."""
    with db.transaction() as conn:
        job = jobs.get(conn, job_id)
        if job is None:
            raise NotFound("no such generation")
        references = jobs.references(conn, job_id)
        images = generated_images.list_for_job(conn, job_id)
    return {"job": job, "references": references, "images": images}


def job_tag(state: dict[str, Any]) -> str:
    """The job's ETag: what its resource shows but the signed URLs and `updated_at` (which
    claim heartbeats move)."""
    fields = JobFields.model_fields.keys() - {"updated_at", "progress"}
    shown = {name: state["job"][name] for name in sorted(fields)}
    references = [r["id"] for r in state["references"]]
    return etag(shown, references, [i["id"] for i in state["images"]])


def finished(state: dict[str, Any]) -> bool:
    return bool(state["job"]["status"] in FINISHED_STATUSES)


def job_resource(job_id: Any) -> dict[str, Any]:
    """The full job (a Job): parameters, status, progress, references and images with signed
    URLs."""
    return render_job(job_state(job_id))


def render_job(state: dict[str, Any]) -> dict[str, Any]:
    """A job's state as its resource (a Job), every URL signed in one batch."""
    job, references, images = state["job"], state["references"], state["images"]
    urls = resources.sign(images=images, references=references)
    shown = [resources.reference_image(r, urls) for r in references]
    return {
        **job,
        "progress": {"done": len(images), "total": job["number_of_shots"]},
        "reference_images": shown,
        "reference_image_urls": [r["url"] for r in shown],
        "images": [resources.generated_image(i, urls) for i in images],
        "urls_expire_at": resources.expiry(*urls.values()),
    }


def job_summary(row: dict[str, Any]) -> dict[str, Any]:
    """A job in a list (a JobSummary): its fields, progress and reference ids (no URLs to sign)."""
    return {**row, "progress": {"done": row["done"], "total": row["number_of_shots"]}}
