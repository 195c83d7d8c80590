"""The image resources several capabilities show (a gallery, a job, the reference library): their
response models, and how a row becomes one: the table's fields plus short-lived signed URLs.
The model is the list of what is shown: a column it does not name never leaves.

The bucket is private: `gcp_url` is the canonical (unusable without credentials) address, and
`url` / `thumbnail_signed_url` are V4 signed GET URLs that expire after SIGNED_URL_TTL_SECONDS
(reused from a per-process cache for the first half of that, see storage.signed_get_url).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from shared import storage
from shared.vocabulary import REFERENCE_MIME_TYPES


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


class ReferenceImage(BaseModel):
    id: UUID
    user_id: UUID
    session_id: UUID | None
    gcp_bucket_path: str
    gcp_url: str
    file_name: str
    file_size: int
    mime_type: Literal[REFERENCE_MIME_TYPES]  # type: ignore[valid-type]
    width: int | None
    height: int | None
    uploaded_at: datetime
    url: str = Field(description="Short-lived signed GET URL of the image.")


def _signed_url(row: dict[str, Any]) -> str:
    return storage.signed_get_url(storage.object_name_from_bucket_path(row["gcp_bucket_path"]))


def generated_image(row: dict[str, Any]) -> dict[str, Any]:
    """A generated_images row with its signed URLs (a GeneratedImage)."""
    thumbnail = row.get("thumbnail_url")
    return {
        **row,
        "url": _signed_url(row),
        "thumbnail_signed_url": (
            storage.signed_get_url(storage.object_name_from_url(thumbnail)) if thumbnail else None
        ),
    }


def reference_image(row: dict[str, Any]) -> dict[str, Any]:
    """A reference_images row with its signed URL (a ReferenceImage)."""
    return {**row, "url": _signed_url(row)}
