"""Request and response shapes of the upload routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.resources import ReferenceImage

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class SignedUploadRequest(BaseModel):
    """Body of POST /v1/uploads/signed-url."""

    model_config = ConfigDict(extra="forbid")
    file_name: str = Field(min_length=1, max_length=255)
    mime_type: str = Field(min_length=1, max_length=100)
    file_size: int = Field(gt=0)
    session_id: str | None = Field(default=None, pattern=UUID_PATTERN)


class UploadForm(BaseModel):
    """The multipart body of POST /v1/uploads (documentation only: `_multipart` reads it)."""

    file: bytes = Field(description="The image: JPEG, PNG or WebP.")
    session_id: str | None = Field(default=None, pattern=UUID_PATTERN)


class SignedUpload(BaseModel):
    """Where and how the client PUTs the file; the bucket event registers it afterwards."""

    upload_url: str = Field(description="V4 signed URL, valid until `expires_at`.")
    method: Literal["PUT"]
    headers: dict[str, str] = Field(description="Send exactly these headers with the PUT.")
    gcp_bucket_path: str
    expires_at: datetime


class ReferenceImagePage(BaseModel):
    items: list[ReferenceImage]
    next_cursor: str | None
