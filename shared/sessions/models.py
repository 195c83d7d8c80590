"""Request and response shapes of the session routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints

from shared.web.models import NON_BLANK_TEXT, Model, Strict
from shared.web.resources import URLS_EXPIRE_AT, signed_url

Title = Annotated[
    str,
    StringConstraints(max_length=200, pattern=NON_BLANK_TEXT),
    Field(description="Shown in the session list: 1-200 characters, not all whitespace."),
]


class SessionCreate(Strict):
    title: Title | None = Field(None, description='Defaults to "New Session".')


class SessionUpdate(Strict):
    title: Title


class Session(Model):
    id: UUID
    user_id: UUID
    title: str
    thumbnail_url: str | None = signed_url(
        "The session's thumbnail: its first generated image, in its small version when there "
        "is one."
    )
    thumbnail_image_id: UUID | None
    generated_count: int
    created_at: datetime
    updated_at: datetime
    urls_expire_at: datetime | None = URLS_EXPIRE_AT


class SessionPage(Model):
    items: list[Session]
    next_cursor: str | None
