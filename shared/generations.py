"""Generation jobs over HTTP, and the job service behind those routes.

POST /v1/generations                      validate, record the job `pending` with its reference
                                          links (and a "New Session" if none is named) in one
                                          transaction, publish {"job_id"}; 202 with the job.
                                          Idempotency-Key: same key and body → the same job;
                                          same key, another body → 409.
GET  /v1/generations/{id}                 the job, its progress, references and images.
POST /v1/generations/{id}/cancel          pending/processing → cancelled (409 otherwise).
POST /v1/generations/{id}/retry           failed/cancelled → pending, queued again (409 otherwise).
GET  /v1/sessions/{id}/generations        a session's jobs, newest first, ?status=, cursor pages.

A request that cannot be published after its job is recorded is not lost: the sweeper
re-drives pending jobs. Another user's ids answer 404, in paths and in bodies alike.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared import config, db, job_events, log, pubsub, resources
from shared.db import ConstraintViolation
from shared.errors import Conflict, InvalidInput, NotFound, Transient
from shared.queries import generated_images, job_runs, jobs, sessions
from shared.vocabulary import ASPECT_RATIOS, CAMERA_ANGLES, JOB_STATUSES, SHOT_TYPES, STYLES
from shared.web import pagination
from shared.web.models import NON_BLANK_TEXT
from shared.web.pagination import PageQuery
from shared.web.request import ApiRequest
from shared.web.router import Header, Reply, Router

MAX_REFERENCE_IMAGES = 8
IDEMPOTENCY_INDEX = "generation_jobs_user_idempotency_key_idx"
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Uuid = Annotated[str, StringConstraints(pattern=_UUID), Field(json_schema_extra={"format": "uuid"})]
Setting = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NON_BLANK_TEXT),
]
# Columns the service keeps for itself: never part of a response.
_INTERNAL = (
    "leases",
    "request_hash",
    "dispatched_at",
    "redrives",
    "deadline_at",
    "event_lease_until",
    "event_published_at",
    "reference_image_urls",
    "done",
)


class GenerationRequest(BaseModel):
    """The body of POST /v1/generations."""

    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=4000, pattern=NON_BLANK_TEXT
        ),
    ]
    session_id: Uuid | None = None
    shot_type: Literal[SHOT_TYPES] | None = None  # type: ignore[valid-type]
    camera_angle: Literal[CAMERA_ANGLES] | None = None  # type: ignore[valid-type]
    style: Literal[STYLES] | None = None  # type: ignore[valid-type]
    location: Setting | None = None
    lighting: Setting | None = None
    weather: Setting | None = None
    is_custom_enabled: bool = False
    aspect_ratio: Literal[ASPECT_RATIOS] = "1:1"  # type: ignore[valid-type]
    number_of_shots: Annotated[int, Field(ge=1, le=10)] = 1
    reference_image_ids: Annotated[list[Uuid], Field(max_length=MAX_REFERENCE_IMAGES)] = []

    def fingerprint(self) -> str:
        """A hash of what was asked (ids lower-cased, references as a set): the request_hash."""
        fields = self.model_dump(mode="json")
        fields["session_id"] = (self.session_id or "").lower() or None
        fields["reference_image_ids"] = sorted({r.lower() for r in self.reference_image_ids})
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class JobListQuery(PageQuery):
    """The query of GET /v1/sessions/{id}/generations (documentation: `list_route` reads it)."""

    status: Literal[JOB_STATUSES] | None = None  # type: ignore[valid-type]


IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "Makes the request safe to repeat: the same key with the same body answers the job it "
    "created (with `Idempotent-Replayed: true`); the same key with another body is a 409.",
    max_length=255,
)


def register(router: Router) -> None:
    """Add the generation routes to the api's route table (with what the OpenAPI document says)."""
    tags = ("generations",)
    router.add(
        "POST",
        "/v1/generations",
        create_route,
        operation_id="generations_create_route",
        body=GenerationRequest,
        status=202,
        errors=(404, 409),
        tags=tags,
        headers=(IDEMPOTENCY_KEY,),
    )
    router.add(
        "GET",
        "/v1/generations/{job_id}",
        get_route,
        operation_id="generations_get_route",
        tags=tags,
    )
    router.add(
        "POST",
        "/v1/generations/{job_id}/cancel",
        cancel_route,
        operation_id="generations_cancel_route",
        errors=(409,),
        tags=tags,
    )
    router.add(
        "POST",
        "/v1/generations/{job_id}/retry",
        retry_route,
        operation_id="generations_retry_route",
        status=202,
        errors=(409,),
        tags=tags,
    )
    router.add(
        "GET",
        "/v1/sessions/{session_id}/generations",
        list_route,
        operation_id="generations_list_route",
        query=JobListQuery,
        tags=tags,
    )


# ---- Service -------------------------------------------------------------------------------


def create(
    user_id: Any, request: GenerationRequest, idempotency_key: str | None = None
) -> tuple[dict[str, Any], bool]:
    """Record and queue a job; returns (job, replayed)."""
    fingerprint = request.fingerprint()
    try:
        with db.transaction() as conn:
            if idempotency_key is not None:
                earlier = jobs.get_by_idempotency_key(conn, user_id=user_id, key=idempotency_key)
                if earlier is not None:
                    return _replay(earlier, fingerprint), True
            job = _record(conn, user_id, request, idempotency_key, fingerprint)
    except ConstraintViolation as violation:
        if violation.constraint != IDEMPOTENCY_INDEX or idempotency_key is None:
            raise
        with db.transaction() as conn:  # a concurrent request with the key won the insert
            earlier = jobs.get_by_idempotency_key(conn, user_id=user_id, key=idempotency_key)
        assert earlier is not None
        return _replay(earlier, fingerprint), True
    queue(job["id"])
    return job, False


def _record(
    conn: Any, user_id: Any, request: GenerationRequest, key: str | None, fingerprint: str
) -> dict[str, Any]:
    if request.session_id is None:
        session_id = sessions.create(conn, user_id=user_id)["id"]
    elif sessions.get_owned(conn, session_id=request.session_id, user_id=user_id) is None:
        raise NotFound("no such session", details={"session_id": request.session_id})
    else:
        session_id = request.session_id
    fields = request.model_dump(exclude={"session_id", "reference_image_ids"})
    job = jobs.create(
        conn,
        user_id=user_id,
        session_id=session_id,
        idempotency_key=key,
        request_hash=fingerprint,
        deadline_seconds=config.settings().job_deadline_seconds,
        **fields,
    )
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


def retry(job_id: str, user_id: Any) -> dict[str, Any]:
    with db.transaction() as conn:
        current = owned(conn, job_id, user_id)
    if current["status"] in ("failed", "cancelled") and current["event_published_at"] is None:
        job_events.flush(current["id"])  # its finish is announced before it runs again
    with db.transaction() as conn:
        job = job_runs.retry(
            conn,
            job_id=current["id"],
            user_id=user_id,
            deadline_seconds=config.settings().job_deadline_seconds,
        )
        current = job or owned(conn, job_id, user_id)
    if job is None:
        if current["status"] in ("failed", "cancelled"):
            raise Conflict("the job is still finishing; try again shortly", code="finishing")
        raise Conflict(f"a {current['status']} job cannot be retried", code="invalid_state")
    queue(job["id"])
    return job


# ---- Resources -----------------------------------------------------------------------------


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _INTERNAL}


def job_resource(job_id: Any) -> dict[str, Any]:
    """The full job: parameters, status, progress, references and images with signed URLs."""
    with db.transaction() as conn:
        job = jobs.get(conn, job_id)
        references = jobs.references(conn, job_id)
        images = generated_images.list_for_job(conn, job_id)
    assert job is not None
    resource = _fields(job)
    resource["progress"] = {"done": len(images), "total": job["number_of_shots"]}
    resource["reference_images"] = [resources.reference_image(r) for r in references]
    resource["reference_image_urls"] = [r["url"] for r in resource["reference_images"]]
    resource["images"] = [resources.generated_image(i) for i in images]
    return resource


def job_summary(row: dict[str, Any]) -> dict[str, Any]:
    """A job in a list: its fields, progress and reference ids (no URLs to sign)."""
    resource = _fields(row)
    resource["progress"] = {"done": row["done"], "total": row["number_of_shots"]}
    return resource


# ---- Routes --------------------------------------------------------------------------------


def create_route(request: ApiRequest) -> Reply:
    """Create a generation job (202); honours Idempotency-Key."""
    key = request.raw.headers.get(IDEMPOTENCY_KEY.name)
    if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY.max_length:
        raise InvalidInput(f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY.max_length} characters")
    job, replayed = create(request.user_id, request.body(GenerationRequest), key)
    headers = {"Location": f"/v1/generations/{job['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Reply(202, job_resource(job["id"]), headers)


def get_route(request: ApiRequest) -> Reply:
    """A generation job with its progress, references and images."""
    with db.transaction() as conn:
        job = owned(conn, request.params["job_id"], request.user_id)
    return Reply(200, job_resource(job["id"]))


def cancel_route(request: ApiRequest) -> Reply:
    """Stop a pending or processing job; nothing more is rendered for it."""
    return Reply(200, job_resource(cancel(request.params["job_id"], request.user_id)["id"]))


def retry_route(request: ApiRequest) -> Reply:
    """Run a failed or cancelled job again; the shots it already has are kept."""
    return Reply(202, job_resource(retry(request.params["job_id"], request.user_id)["id"]))


def list_route(request: ApiRequest) -> Reply:
    """A session's jobs, newest first; ?status= filters, ?limit=&cursor= pages."""
    session_id = request.params["session_id"]
    query = request.query_model(JobListQuery)
    status, limit, after = query.status, query.limit, pagination.decode(query.cursor)
    with db.transaction() as conn:
        try:
            uuid.UUID(session_id)
            found = sessions.get_owned(conn, session_id=session_id, user_id=request.user_id)
        except ValueError:
            found = None
        if found is None:
            raise NotFound("no such session")
        page = jobs.list_for_session(
            conn,
            session_id=session_id,
            user_id=request.user_id,
            limit=limit + 1,
            status=status,
            after=after,
        )
    body = pagination.page(page, limit, lambda r: (r["created_at"], r["id"]), job_summary)
    return Reply(200, body)
