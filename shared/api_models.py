"""Request and response shapes of the routes in shared/sessions.py, shared/images.py and
shared/routes.py. The OpenAPI document is generated from these (tools/openapi.py), and
responses are serialised through them, so the code cannot drift from the document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared import pagination

# At least one character that is not whitespace, no NUL (PostgreSQL text cannot hold it).
NON_BLANK_TEXT = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
Title = Annotated[
    str,
    StringConstraints(max_length=200, pattern=NON_BLANK_TEXT),
    Field(description="Shown in the session list: 1-200 characters, not all whitespace."),
]


class Strict(BaseModel):
    """A request body: strict types, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


class SessionCreate(Strict):
    title: Title | None = Field(None, description='Defaults to "New Session".')


class SessionUpdate(Strict):
    title: Title


class PageQuery(BaseModel):
    limit: int = Field(pagination.DEFAULT_LIMIT, ge=1, le=pagination.MAX_LIMIT)
    cursor: str | None = Field(
        None, max_length=512, description="`next_cursor` of the previous page."
    )


class HealthQuery(BaseModel):
    ready: bool = Field(False, description="Also check the database (readiness).")


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every error answer: 4xx and 5xx alike."""

    error: ErrorInfo


class Health(BaseModel):
    status: Literal["ok", "ready"]
    database: Literal["ok"] | None = None


class User(BaseModel):
    id: UUID
    auth_subject: str
    email: str | None
    display_name: str | None
    created_at: datetime
    updated_at: datetime


class Session(BaseModel):
    id: UUID
    user_id: UUID
    title: str
    thumbnail_url: str | None = Field(description="Canonical URL of the first generated image.")
    thumbnail_image_id: UUID | None
    thumbnail_signed_url: str | None = Field(
        description="Short-lived signed URL of the thumbnail (its small version when there is one)."
    )
    generated_count: int
    created_at: datetime
    updated_at: datetime


class SessionPage(BaseModel):
    items: list[Session]
    next_cursor: str | None


class GeneratedImage(BaseModel):
    id: UUID
    generation_job_id: UUID
    user_id: UUID
    session_id: UUID | None
    gcp_bucket_path: str
    gcp_url: str
    thumbnail_url: str | None
    file_name: str
    file_size: int
    mime_type: str
    width: int | None
    height: int | None
    prompt_used: str | None
    generation_index: int
    generation_method: str | None
    created_at: datetime
    url: str = Field(description="Short-lived signed GET URL of the image.")
    thumbnail_signed_url: str | None = Field(description="Short-lived signed URL of the thumbnail.")


class ImagePage(BaseModel):
    items: list[GeneratedImage]
    next_cursor: str | None
