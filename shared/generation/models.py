"""Request and response shapes of the generation routes."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints

from shared.generation.parameters import JobParameters
from shared.vocabulary import GENERATION_METHODS, JOB_STATUSES
from shared.web.models import Model
from shared.web.pagination import PageQuery
from shared.web.resources import URLS_EXPIRE_AT, GeneratedImage, ReferenceImage, signed_url

MAX_REFERENCE_IMAGES = 8
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Uuid = Annotated[str, StringConstraints(pattern=_UUID), Field(json_schema_extra={"format": "uuid"})]


class GenerationRequest(JobParameters):
    """The body of POST /v1/generations."""

    model_config = ConfigDict(extra="forbid")

    session_id: Uuid | None = None
    reference_image_ids: Annotated[list[Uuid], Field(max_length=MAX_REFERENCE_IMAGES)] = Field([])

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
