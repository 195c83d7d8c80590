"""Response shapes of GET /v1/me."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from shared.web.models import Model


class Limit(Model):
    quota: int = Field(description="The most this limit allows (the default or the user's own).")
    used: int = Field(description="What counts against it now.")
    remaining: int
    window_seconds: int | None = Field(
        description="The rolling window usage is counted over; null for things at once."
    )
    reset_seconds: int | None = Field(
        description="Seconds until the oldest counted item leaves the window; null if none."
    )


class Limits(Model):
    active_jobs: Limit = Field(description="Jobs pending or processing at once.")
    images_per_day: Limit = Field(description="Images asked for (shots, retries included).")
    uploads_per_day: Limit = Field(description="Uploads (signed URLs issued included).")
    upload_bytes_per_day: Limit = Field(description="Bytes of those uploads.")


class Me(Model):
    """The caller's user record, limits and usage."""

    id: UUID
    auth_subject: str
    email: str | None
    display_name: str | None
    created_at: datetime
    updated_at: datetime
    limits: Limits
