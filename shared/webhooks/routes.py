"""Job webhooks over HTTP.

GET  /v1/webhook-secret                        the caller's signing secret (made on first use).
POST /v1/webhook-secret/rotate                 a new secret; the previous one keeps signing too
                                               for ROTATION_OVERLAP_SECONDS.
GET  /v1/generations/{id}/webhook-deliveries   every attempt at the job's webhook messages,
                                               newest first, cursor pages.

Also the document of the request the system sends (OpenAPI `webhooks`).
"""

from __future__ import annotations

from typing import Any

from shared import db
from shared.generation import service as generation
from shared.queries import webhooks
from shared.web import pagination
from shared.web.headers import Header
from shared.web.pagination import PageQuery
from shared.web.request import ApiRequest
from shared.web.router import Reply, Routes, Webhook
from shared.webhooks import signing
from shared.webhooks.models import WebhookDeliveryPage, WebhookPayload, WebhookSecret

ROTATION_OVERLAP_SECONDS = 24 * 3600

GENERATION_EVENT = Webhook(
    name="generation-event",
    operation_id="webhooks_generation_event",
    body=WebhookPayload,
    summary="A job's event, POSTed to the job's `webhook`",
    description=(
        "Sent for the events the job's `webhook_events` names, signed per Standard Webhooks 1.0 "
        "with the caller's secret (`GET /v1/webhook-secret`). One POST per attempt, 10 s "
        "timeout, redirects not followed. Retries (with backoff, the same `webhook-id`) follow "
        "408, 429, 5xx, timeouts and connection errors; deliveries may arrive out of order "
        "(see `sequence`). Every attempt is listed by "
        "`GET /v1/generations/{job_id}/webhook-deliveries`."
    ),
    headers=(
        Header("webhook-id", "`msg_...`: the same on every attempt of a message.", 36),
        Header("webhook-timestamp", "Unix seconds when this attempt was signed.", 20),
        Header(
            "webhook-signature",
            "`v1,<base64 HMAC-SHA256 of webhook-id.webhook-timestamp.body>`; after a rotation, "
            "a second one with the previous secret, space-separated.",
            200,
        ),
    ),
    responses={
        "2XX": "Delivered",
        "410": "Stop: nothing more is sent for this job",
        "408": "Retried later (as are 429, 5xx, timeouts and connection errors)",
        "4XX": "Failed for good: not retried",
    },
)


routes = Routes("webhooks", operations="webhooks", webhooks=(GENERATION_EVENT,))


def _secret(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "previous_secret_expires_at": row["previous_expires_at"]}


@routes.get("/v1/webhook-secret", response=WebhookSecret)
def secret_route(request: ApiRequest) -> Reply:
    """The caller's webhook signing secret, made on first use."""
    with db.transaction() as conn:
        return Reply(200, _secret(webhooks.secret(conn, user_id=request.user_id)))


@routes.post("/v1/webhook-secret/rotate", response=WebhookSecret)
def rotate_secret_route(request: ApiRequest) -> Reply:
    """A new signing secret; deliveries carry the previous one's signature too for 24 hours."""
    with db.transaction() as conn:
        row = webhooks.rotate(
            conn, user_id=request.user_id, overlap_seconds=ROTATION_OVERLAP_SECONDS
        )
    return Reply(200, _secret(row))


def _deliveries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "webhook_id": signing.webhook_id(row["message_id"])} for row in rows]


@routes.get(
    "/v1/generations/{job_id}/webhook-deliveries", query=PageQuery, response=WebhookDeliveryPage
)
def deliveries_route(request: ApiRequest) -> Reply:
    """Every attempt at the job's webhook messages, newest first; ?limit=&cursor= pages."""
    query = request.query_model(PageQuery)
    with db.transaction() as conn:
        job = generation.owned(conn, request.params["job_id"], request.user_id)
        page = webhooks.deliveries(
            conn, job_id=job["id"], limit=query.limit + 1, after=pagination.decode(query.cursor)
        )
    body = pagination.page(page, query.limit, lambda r: (r["created_at"], r["id"]), _deliveries)
    return Reply(200, body)
