"""deliver_webhooks' service: one generation event, at most one POST to the job's webhook.

In (generation-events): {"event": "started", "job_id", "started_at"}, {"event": "image",
"job_id", "index"} or a finish (shared/generation/job_events.py).

Record the job's webhook message for the event (once per event, under its key, with the job's
next sequence number) → claim it (compare-and-set: pending, no attempt in flight, and the
job's receiver has not answered 410) → the payload: the job as GET shows it, with freshly
signed URLs → sign it with the user's secrets → POST once (shared/outbound.py checks the
address again and connects to the one it checked) → record the attempt and settle the
message. 2xx: delivered. 410: stopped, and the job's later messages are skipped. 408, 429,
5xx, a timeout or a connection error: raised, so Pub/Sub retries with its backoff and
dead-letters after the last attempt. Anything else (another 4xx, a 3xx: redirects are not
followed, a refused address): failed, not retried.

A repeat of a settled message is acknowledged; one that meets an attempt in flight is retried
later. An event the job's webhook did not ask for, or of a job or image that is gone, is
acknowledged and nothing is sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared import config, db, log, outbound
from shared.errors import InvalidInput, Transient
from shared.events import PubSubMessage
from shared.queries import generated_images, jobs, webhooks
from shared.webhooks import signing

TIMEOUT_SECONDS = 10.0
# An attempt's claim outlives its request and the writes around it.
LEASE_SECONDS = TIMEOUT_SECONDS + 20
_KINDS = {"started": "started", "image": "image", "finished": "completed"}


@dataclass(frozen=True)
class Event:
    """A generation event as deliver_webhooks sees it."""

    job_id: uuid.UUID
    kind: str  # started | image | completed
    key: str | None = None  # the event's domain key (an image's comes from its row)
    occurred_at: datetime | None = None
    index: int | None = None


def event_of(message: PubSubMessage) -> Event:
    """The event a generation-events message carries (malformed: permanent)."""
    data = message.data
    kind = _KINDS.get(str(data.get("event", "finished")))
    try:
        job_id = uuid.UUID(str(data["job_id"]))
        if kind == "started":
            started_at = datetime.fromisoformat(data["started_at"])
            return Event(job_id, kind, f"started:{started_at.isoformat()}", started_at)
        if kind == "image" and type(data["index"]) is int:
            return Event(job_id, kind, index=data["index"])
        if kind == "completed":
            finished_at = datetime.fromisoformat(data["finished_at"])
            return Event(job_id, kind, f"completed:{data['event_id']}", finished_at)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"a malformed {kind} event", code="malformed_event") from exc
    raise InvalidInput("not a generation event", code="malformed_event")


def deliver(event: Event) -> None:
    """Deliver one event (see the module docstring)."""
    with db.transaction() as conn:
        job = jobs.get(conn, event.job_id)
        message = _record(conn, job, event) if job else None
        if job is None or message is None:
            log.info(
                "no webhook message for this event", action="webhook.unwanted", kind=event.kind
            )
            return
        skipped = webhooks.skip_if_stopped(conn, message["id"])
        claimed = None
        if skipped is None:
            claimed = webhooks.claim(conn, message["id"], lease_seconds=LEASE_SECONDS)
        secrets = webhooks.signing_secrets(conn, user_id=job["user_id"])
    msg_id = signing.webhook_id(message["id"])
    with log.bind(job_id=str(job["id"]), webhook_id=msg_id):
        if claimed is None:
            _refused(skipped or message)
            return
        _attempt(job, claimed, msg_id, secrets)


def _record(conn: Any, job: dict[str, Any], event: Event) -> dict[str, Any] | None:
    """The job's webhook message for the event; None if its webhook did not ask for it, or the
    image is gone."""
    if job["webhook"] is None or event.kind not in (job["webhook_events"] or ()):
        return None
    key, occurred_at = event.key, event.occurred_at
    if event.kind == "image":
        image = generated_images.at_index(conn, job_id=job["id"], index=event.index or 0)
        if image is None:
            return None
        key, occurred_at = f"image:{image['id']}", image["created_at"]
    assert key is not None
    return webhooks.record_message(
        conn,
        job_id=job["id"],
        event_key=key,
        type=f"generation.{event.kind}",
        image_index=event.index,
        occurred_at=occurred_at,
    )


def _refused(message: dict[str, Any]) -> None:
    """No claim: acknowledge a settled message, retry one whose attempt is in flight."""
    if message["status"] == "pending":
        raise Transient("an attempt of this webhook message is in flight", code="claimed")
    log.info(f"webhook message {message['status']}: acknowledged", action="webhook.duplicate")


def payload(job_id: Any, message: dict[str, Any]) -> bytes:
    """The JSON body: the message's event and the job as GET /v1/generations/{id} shows it."""
    # The job's shapes (pydantic) load with the first message sent: most of the events that
    # arrive are the finishes of jobs that have no webhook (cold start, docs/decisions/0004).
    from shared.generation import service as generation
    from shared.webhooks.models import WebhookPayload

    body = WebhookPayload(
        type=message["type"],
        timestamp=message["occurred_at"],
        sequence=message["sequence"],
        image_index=message["image_index"],
        data=generation.JobResource.model_validate(generation.job_resource(job_id)),
    )
    return body.model_dump_json().encode()


def outcome(answer: outbound.Answer) -> str:
    """delivered, stopped, retry or failed (see the module docstring)."""
    status = answer.status
    if status is None:
        return "failed" if answer.refused else "retry"
    if 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "stopped"
    return "retry" if status in (408, 429) or status >= 500 else "failed"


def _attempt(job: dict[str, Any], message: dict[str, Any], msg_id: str, secrets: list[str]) -> None:
    body = payload(job["id"], message)
    answer = outbound.post(
        job["webhook"],
        body,
        signing.headers(msg_id, body, secrets, datetime.now(UTC)),
        timeout=TIMEOUT_SECONDS,
        allow_loopback_http=config.settings().webhooks.allow_loopback_http,
    )
    result = outcome(answer)
    with db.transaction() as conn:
        webhooks.settle(
            conn,
            message,
            outcome=result,
            status="pending" if result == "retry" else result,
            status_code=answer.status,
            error=answer.error,
            latency_ms=round(answer.seconds * 1000),
        )
    fields = {"attempt": message["attempts"], "status_code": answer.status, "error": answer.error}
    log.info(f"webhook {result}", action=f"webhook.{result}", type=message["type"], **fields)
    if result == "retry":
        raise Transient(f"the webhook receiver did not take it: {answer.status or answer.error}")
