"""The image resources several capabilities show (a gallery, a job, the reference library, a
session's thumbnail): their response models, the fields every signed URL is documented with, and
how rows become resources. The model is the list of what is shown: a column it does not name
never leaves.

The bucket is private. The canonical addresses the tables store (`gcp_url`, the `thumbnail_url`
columns) stay in the database: a resource's URL fields hold V4 signed GET URLs, which load from
wherever the client runs (locally they point at the emulator), and `urls_expire_at` says until
when every URL in the object loads (SIGNED_URL_TTL_SECONDS after signing; the per-process cache
hands a URL out only while at least half of that remains). The URLs of a page or a job are signed
in one batch (`storage.signed_get_urls`), concurrently.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from shared import storage
from shared.storage import SignedUrl
from shared.vocabulary import REFERENCE_MIME_TYPES
from shared.web.models import Model

SIGNED_URL_NOTE = (
    "Signed: a V4 signed GET URL of the private bucket's object, which loads from where the "
    "client runs (locally: the storage emulator) until `urls_expire_at`."
)
STORAGE_PATH = (
    "Where the object is stored: `{bucket}/{object name}`. A storage path, not a URL: "
    "load the object through the signed URL fields."
)


def signed_url(description: str) -> Any:
    """A response field that holds a signed URL: documented as such (`x-signed-url`)."""
    return Field(
        description=f"{description} {SIGNED_URL_NOTE}",
        json_schema_extra={"format": "uri", "x-signed-url": True},
    )


URLS_EXPIRE_AT: Any = Field(
    description=(
        "When the first signed URL in this object stops loading: SIGNED_URL_TTL_SECONDS (900 s "
        "by default) after it was signed. A signed URL is served again only while at least "
        "half of that remains, so it loads for at least 450 s after the response. Null when "
        "the object carries no URL."
    )
)


class GeneratedImage(Model):
    id: UUID
    generation_job_id: UUID
    user_id: UUID
    session_id: UUID | None
    gcp_bucket_path: str = Field(description=STORAGE_PATH)
    file_name: str
    file_size: int
    mime_type: str
    width: int | None
    height: int | None
    prompt_used: str | None
    generation_index: int
    generation_method: str | None
    created_at: datetime
    url: str = signed_url("The image.")
    thumbnail_url: str | None = signed_url(
        "A small version of the image (384 px on its long side)."
    )
    urls_expire_at: datetime | None = URLS_EXPIRE_AT


class ReferenceImage(Model):
    id: UUID
    user_id: UUID
    session_id: UUID | None
    gcp_bucket_path: str = Field(description=STORAGE_PATH)
    file_name: str
    file_size: int
    mime_type: Literal[REFERENCE_MIME_TYPES]  # type: ignore[valid-type]
    width: int | None
    height: int | None
    uploaded_at: datetime
    url: str = signed_url("The image.")
    urls_expire_at: datetime | None = URLS_EXPIRE_AT


Urls = Mapping[str, SignedUrl]


def _image_objects(row: Mapping[str, Any]) -> Iterator[str]:
    yield storage.object_name_from_bucket_path(row["gcp_bucket_path"])
    if row.get("thumbnail_url"):
        yield storage.object_name_from_url(row["thumbnail_url"])


def _session_thumbnail(row: Mapping[str, Any]) -> str | None:
    """The object a session shows: its thumbnail image's small version when it has one."""
    canonical = row.get("thumbnail_small_url") or row.get("thumbnail_url")
    return storage.object_name_from_url(canonical) if canonical else None


def sign(
    *,
    images: Iterable[Mapping[str, Any]] = (),
    references: Iterable[Mapping[str, Any]] = (),
    sessions: Iterable[Mapping[str, Any]] = (),
) -> dict[str, SignedUrl]:
    """Signed URLs for every object these rows show, in one batch."""
    names = [name for row in images for name in _image_objects(row)]
    names += [storage.object_name_from_bucket_path(r["gcp_bucket_path"]) for r in references]
    names += [name for name in map(_session_thumbnail, sessions) if name]
    return storage.signed_get_urls(names)


def expiry(*signed: SignedUrl | None) -> datetime | None:
    """When the first of these URLs stops loading (None without any)."""
    return min((s.expires_at for s in signed if s is not None), default=None)


def generated_image(row: Mapping[str, Any], urls: Urls) -> dict[str, Any]:
    """A generated_images row with its signed URLs (a GeneratedImage)."""
    image, *thumbnail = (urls[name] for name in _image_objects(row))
    small = thumbnail[0] if thumbnail else None
    return {
        **row,
        "url": image.url,
        "thumbnail_url": small.url if small else None,
        "urls_expire_at": expiry(image, small),
    }


def reference_image(row: Mapping[str, Any], urls: Urls) -> dict[str, Any]:
    """A reference_images row with its signed URL (a ReferenceImage)."""
    signed = urls[storage.object_name_from_bucket_path(row["gcp_bucket_path"])]
    return {**row, "url": signed.url, "urls_expire_at": signed.expires_at}


def session(row: Mapping[str, Any], urls: Urls) -> dict[str, Any]:
    """A sessions row with its thumbnail's signed URL (a Session)."""
    name = _session_thumbnail(row)
    signed = urls[name] if name else None
    return {
        **row,
        "thumbnail_url": signed.url if signed else None,
        "urls_expire_at": expiry(signed),
    }


def generated_images(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    urls = sign(images=rows)
    return [generated_image(r, urls) for r in rows]


def reference_images(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    urls = sign(references=rows)
    return [reference_image(r, urls) for r in rows]


def sessions(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    urls = sign(sessions=rows)
    return [session(r, urls) for r in rows]
