"""Request and response shapes of the generation routes."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from shared.generation.parameters import JobParameters
from shared.resolver import LOOKUP_SECONDS
from shared.vocabulary import GENERATION_METHODS, JOB_STATUSES, WEBHOOK_EVENTS
from shared.web.models import Model
from shared.web.pagination import PageQuery
from shared.web.resources import URLS_EXPIRE_AT, GeneratedImage, ReferenceImage, signed_url

MAX_REFERENCE_IMAGES = 8
MAX_WEBHOOK_LENGTH = 2000
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Uuid = Annotated[str, StringConstraints(pattern=_UUID), Field(json_schema_extra={"format": "uuid"})]


WebhookEvent = Literal[WEBHOOK_EVENTS]  # type: ignore[valid-type]


class JobWebhook(Model):
    """Where a job's events go (shared/webhooks/), and which ones."""

    webhook: (
        Annotated[
            str,
            StringConstraints(max_length=MAX_WEBHOOK_LENGTH, pattern=r"^https?://"),
            Field(json_schema_extra={"format": "uri"}),
        ]
        | None
    ) = Field(
        None,
        description="An absolute https URL (port 443 or 8443) that receives the job's events, "
        "signed per Standard Webhooks 1.0 (see `webhooks` in this document). A host that is, or "
        "resolves to, a loopback, private, link-local, carrier-grade NAT, multicast, reserved "
        "or unspecified address is refused with 400; a host whose name service does not answer "
        f"within {LOOKUP_SECONDS:g} s is a 503 `dns_timeout` to retry.",
    )
    webhook_events: (
        Annotated[list[WebhookEvent], Field(min_length=1, max_length=len(WEBHOOK_EVENTS))] | None
    ) = Field(
        None,
        description="The events to send (default: all of them): `started`, `image` (each image "
        "recorded) and `completed` (any finish: completed, failed or cancelled). Only with "
        "`webhook`.",
    )

    @model_validator(mode="after")
    def _events_need_a_webhook(self) -> JobWebhook:
        if self.webhook_events is not None and self.webhook is None:
            raise ValueError("webhook_events needs a webhook")
        return self

    def wanted_events(self) -> list[str] | None:
        """The events to send, in the vocabulary's order (all by default); None: no webhook."""
        if self.webhook is None:
            return None
        given = set(self.webhook_events or WEBHOOK_EVENTS)
        return [e for e in WEBHOOK_EVENTS if e in given]


class GenerationRequest(JobParameters, JobWebhook):
    """The body of POST /v1/generations."""

    model_config = ConfigDict(extra="forbid")

    session_id: Uuid | None = None
    reference_image_ids: Annotated[list[Uuid], Field(max_length=MAX_REFERENCE_IMAGES)] = Field([])

    def fingerprint(self) -> str:
        """A hash of what was asked (ids lower-cased, references and events as sets): the
        request_hash."""
        fields = self.model_dump(mode="json")
        fields["session_id"] = (self.session_id or "").lower() or None
        fields["reference_image_ids"] = sorted({r.lower() for r in self.reference_image_ids})
        fields["webhook_events"] = self.wanted_events()
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class JobListQuery(PageQuery):
    """The query of GET /v1/sessions/{id}/generations (documentation: `list_route` reads it)."""

    status: Literal[JOB_STATUSES] | None = None  # type: ignore[valid-type]


class Progress(Model):
    done: int = Field(description="Shots recorded so far.")
    total: int = Field(description="Shots asked for (`number_of_shots`).")


class JobFields(JobParameters):
    """A job as every answer shows it: its parameters, state and progress."""

    id: UUID
    user_id: UUID
    session_id: UUID | None
    generated_prompt: str | None = Field(description="The prompt the images are made from.")
    status: Literal[JOB_STATUSES]  # type: ignore[valid-type]
    error_message: str | None
    error_code: str | None = Field(
        description="Why a failed job failed: content_policy (moderation or the image model "
        "refused), model_request_invalid, reference_missing, reference_unusable (registered "
        "before working copies and past today's upload limits), deadline_exceeded, stalled."
    )
    generation_method: Literal[GENERATION_METHODS] | None  # type: ignore[valid-type]
    model_used: str | None
    idempotency_key: str | None
    webhook: str | None = Field(description="Where the job's events are sent, if anywhere.")
    webhook_events: list[WebhookEvent] | None = Field(description="The events sent there.")
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    progress: Progress


class Job(JobFields):
    """One job with its reference images and the images made so far."""

    reference_images: list[ReferenceImage]
    reference_image_urls: list[str] = signed_url(
        "Each of `reference_images`, in the same order (their `url`)."
    )
    images: list[GeneratedImage]
    urls_expire_at: datetime | None = URLS_EXPIRE_AT


class JobSummary(JobFields):
    """A job in a list."""

    reference_image_ids: list[UUID]


class JobPage(Model):
    items: list[JobSummary]
    next_cursor: str | None
