"""Response shapes of the webhook routes, and the body every webhook request carries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.generation import service as generation
from shared.vocabulary import WEBHOOK_MESSAGE_STATUSES, WEBHOOK_OUTCOMES, WEBHOOK_TYPES
from shared.web.models import Model


class WebhookSecret(Model):
    """The caller's signing secret."""

    secret: str = Field(
        description="`whsec_` and the base64 key: verify deliveries with any Standard Webhooks "
        "library (HMAC-SHA256 of `webhook-id.webhook-timestamp.body`)."
    )
    created_at: datetime
    rotated_at: datetime | None
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, deliveries carry a signature with the previous secret "
        "too (space-separated in `webhook-signature`) until then."
    )


class WebhookDelivery(Model):
    """One attempt to deliver one of the job's webhook messages."""

    id: UUID
    webhook_id: str = Field(description="The message's `webhook-id`, the same on every attempt.")
    type: Literal[WEBHOOK_TYPES]  # type: ignore[valid-type]
    sequence: int
    image_index: int | None
    attempt: int = Field(description="1 for the first attempt of this message.")
    outcome: Literal[WEBHOOK_OUTCOMES] = Field(  # type: ignore[valid-type]
        description="`delivered` (2xx), `retry` (408, 429, 5xx, timeout or connection error: "
        "tried again later), `failed` (another answer, or the address was refused: not tried "
        "again), `stopped` (410: nothing more is sent for this job)."
    )
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    error: str | None = Field(description="Why there was no answer (timeout, refused, ...).")
    latency_ms: int
    created_at: datetime
    message_status: Literal[WEBHOOK_MESSAGE_STATUSES] = Field(  # type: ignore[valid-type]
        description="Where the message stands now: `pending` (in flight or to be retried), "
        "`delivered`, `failed`, `stopped`, `skipped` (not sent: the receiver had answered 410)."
    )


class WebhookDeliveryPage(Model):
    items: list[WebhookDelivery]
    next_cursor: str | None


class WebhookPayload(Model):
    """The JSON body of every webhook request."""

    type: Literal[WEBHOOK_TYPES] = Field(  # type: ignore[valid-type]
        description="`generation.started`, `generation.image` (one per image recorded) or "
        "`generation.completed` (the job finished: completed, failed or cancelled; see "
        "`data.status`)."
    )
    timestamp: datetime = Field(description="When the event happened (RFC 3339).")
    sequence: int = Field(
        description="Counts the job's webhook messages (1, 2, ...) in the order they were made; "
        "deliveries may arrive out of order, and `data` is at least as new as every message with "
        "a lower number, so a receiver may drop a delivery whose number is below one it has."
    )
    image_index: int | None = Field(description="The shot index of a `generation.image`.")
    data: generation.JobResource = Field(
        description="The job as `GET /v1/generations/{id}` shows it when the delivery is made, "
        "images with freshly signed URLs."
    )
