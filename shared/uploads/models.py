"""Request and response shapes of the upload routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field
from pydantic.json_schema import JsonDict, SkipJsonSchema

from shared.config import UploadLimits
from shared.vocabulary import REFERENCE_MIME_TYPES
from shared.web.models import NO_NUL_TEXT, Model
from shared.web.resources import STORAGE_PATH, ReferenceImage

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class SignedUploadRequest(Model):
    """Body of POST /v1/uploads/signed-url."""

    model_config = ConfigDict(extra="forbid")
    file_name: str = Field(min_length=1, max_length=255, pattern=NO_NUL_TEXT)
    # What UPLOAD_FORMATS may allow (a deployment that allows fewer answers 415 for the rest).
    mime_type: Literal[REFERENCE_MIME_TYPES]  # type: ignore[valid-type]
    # UPLOAD_MAX_BYTES may lower this bound (413 past it), never raise it.
    file_size: int = Field(gt=0, le=UploadLimits.max_bytes)
    session_id: str | None = Field(default=None, pattern=UUID_PATTERN)


def _no_default(schema: JsonDict) -> None:
    schema.pop("default", None)


class UploadForm(Model):
    """The multipart body of POST /v1/uploads (documentation only: `_multipart` reads it, by the
    same rules: no other fields, each field once, `session_id` a uuid when given)."""

    model_config = ConfigDict(extra="forbid")
    file: bytes = Field(description="The image: JPEG, PNG or WebP.")
    # A form field is text: it is absent or a uuid, never null.
    session_id: Annotated[str, Field(pattern=UUID_PATTERN)] | SkipJsonSchema[None] = Field(
        None, json_schema_extra=_no_default
    )


class SignedUpload(Model):
    """Where and how the client PUTs the file; the bucket event registers it afterwards."""

    upload_url: str = Field(
        description="Signed: a V4 signed PUT URL of the object to create, which loads from where "
        "the client runs (locally: the storage emulator) until `expires_at`.",
        json_schema_extra={"format": "uri", "x-signed-url": True},
    )
    method: Literal["PUT"]
    headers: dict[str, str] = Field(description="Send exactly these headers with the PUT.")
    gcp_bucket_path: str = Field(description=STORAGE_PATH)
    expires_at: datetime


class ReferenceImagePage(Model):
    items: list[ReferenceImage]
    next_cursor: str | None
