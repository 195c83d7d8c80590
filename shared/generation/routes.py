"""Generation jobs over HTTP.

POST /v1/generations                      validate, count against the limits (429 past one),
                                          record and queue the job; 202 with the job.
                                          Idempotency-Key: same key and body → the same job;
                                          same key, another body → 409.
GET  /v1/generations/{id}                 the job, its progress, references and images.
POST /v1/generations/{id}/cancel          pending/processing → cancelled (409 otherwise).
POST /v1/generations/{id}/retry           failed/cancelled → pending, queued again (409 otherwise;
                                          429 past a limit).
GET  /v1/sessions/{id}/generations        a session's jobs, newest first, ?status=, cursor pages.
"""

from __future__ import annotations

import functools
import uuid

from shared import db
from shared.errors import InvalidInput, NotFound
from shared.generation import service
from shared.generation.models import GenerationRequest, Job, JobListQuery, JobPage
from shared.limits.service import RATE_LIMIT_HEADERS
from shared.queries import jobs, sessions
from shared.web import pagination, waits
from shared.web.headers import Header
from shared.web.request import ApiRequest
from shared.web.router import Reply, Routes

IDEMPOTENCY_KEY = Header(
    "Idempotency-Key",
    "Makes the request safe to repeat: the same key with the same body answers the job it "
    "created (with `Idempotent-Replayed: true`); the same key with another body is a 409.",
    max_length=255,
)
routes = Routes("generations", operations="generations")


@routes.post(
    "/v1/generations",
    body=GenerationRequest,
    response=Job,
    status=202,
    also=(200,),
    errors=(404, 409, 429),
    headers=(IDEMPOTENCY_KEY, waits.PREFER),
    response_headers=(waits.ETAG, waits.PREFERENCE_APPLIED),
    limit_headers=RATE_LIMIT_HEADERS,
)
def create_route(request: ApiRequest) -> Reply:
    """Create a generation job (202); honours Idempotency-Key, and with `Prefer: wait=N` answers
    200 with the finished job if it finishes within N seconds."""
    key = request.raw.headers.get(IDEMPOTENCY_KEY.name)
    if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY.max_length:
        raise InvalidInput(f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY.max_length} characters")
    seconds = waits.wait_seconds(request)
    job, replayed, rate = service.create(request.user_id, request.body(GenerationRequest), key)
    headers = {"Location": f"/v1/generations/{job['id']}", **rate}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    read = functools.partial(service.job_state, job["id"])
    if seconds is None:
        state = read()
    else:
        state = waits.wait_until(f"job:{job['id']}", read, service.finished, seconds)
        headers[waits.PREFERENCE_APPLIED.name] = f"wait={seconds}"
    headers[waits.ETAG.name] = service.job_tag(state)
    status = 200 if seconds is not None and service.finished(state) else 202
    return Reply(status, service.render_job(state), headers)


@routes.get("/v1/generations/{job_id}", response=Job, **waits.BLOCKING_READ)
def get_route(request: ApiRequest) -> Reply:
    """A generation job with its progress, references and images; a blocking read with
    `If-None-Match` and `Prefer: wait=N`."""
    conditions = waits.Conditions.of(request)
    with db.transaction() as conn:
        job_id = service.owned(conn, request.params["job_id"], request.user_id)["id"]
    read = conditions.read(
        f"job:{job_id}", functools.partial(service.job_state, job_id), service.job_tag
    )
    if read.not_modified:
        return Reply(304, None, read.headers)
    return Reply(200, service.render_job(read.state), read.headers)


@routes.post("/v1/generations/{job_id}/cancel", response=Job, errors=(409,))
def cancel_route(request: ApiRequest) -> Reply:
    """Stop a pending or processing job; nothing more is rendered for it."""
    return Reply(
        200, service.job_resource(service.cancel(request.params["job_id"], request.user_id)["id"])
    )


@routes.post(
    "/v1/generations/{job_id}/retry",
    response=Job,
    status=202,
    errors=(409, 429),
    limit_headers=RATE_LIMIT_HEADERS,
)
def retry_route(request: ApiRequest) -> Reply:
    """Run a failed or cancelled job again; the shots it already has are kept."""
    job, rate = service.retry(request.params["job_id"], request.user_id)
    return Reply(202, service.job_resource(job["id"]), rate)


@routes.get("/v1/sessions/{session_id}/generations", query=JobListQuery, response=JobPage)
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
    body = pagination.page(
        page,
        limit,
        lambda r: (r["created_at"], r["id"]),
        lambda rows: list(map(service.job_summary, rows)),
    )
    return Reply(200, body)
