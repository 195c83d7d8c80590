"""Cloud Storage: object names, canonical URLs, signed URLs, ranged reads and writes.

One client per process, created on first use, and the client library loaded then (object names
and URLs need neither). With STORAGE_EMULATOR_HOST set (the local stack) the client talks to the
emulator anonymously and signed URLs point at the emulator, signed with the local throwaway key
in SIGNING_CREDENTIALS_FILE. On GCP, URLs are signed through IAM signBlob with the function's
own service account.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from shared import config
from shared.errors import NotFound, Transient

if TYPE_CHECKING:
    from google.cloud.storage import Blob, Bucket, Client

_lock = threading.Lock()
_client: Client | None = None

UPLOADS_PREFIX = "uploads/"
GENERATED_PREFIX = "generated/"
THUMBNAILS_PREFIX = "thumbnails/"
QUARANTINE_PREFIX = "quarantine/"
WORKING_PREFIX = "working/"
CANONICAL_HOST = "https://storage.googleapis.com"


def _emulator() -> str | None:
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    if host and not host.startswith("http"):
        host = f"http://{host}"
    return host


def client() -> Client:
    """The process's storage client."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                from google.cloud.storage import Client

                project = config.settings().project
                if _emulator():
                    from google.auth.credentials import AnonymousCredentials

                    _client = Client(project=project, credentials=AnonymousCredentials())
                else:
                    _client = Client(project=project)
    return _client


def reset() -> None:
    """Forget the client: the next use makes one for the current environment (tests)."""
    global _client
    with _lock:
        _client = None


def bucket() -> Bucket:
    return client().bucket(config.settings().bucket)


def timestamp(now: datetime | None = None) -> str:
    """The timestamp used in object names: sortable, UTC, to the microsecond."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")


def upload_object_name(user_id: Any, safe_file_name: str, now: datetime | None = None) -> str:
    return f"{UPLOADS_PREFIX}{user_id}/{timestamp(now)}_{safe_file_name}"


def generated_object_name(job_id: Any, index: int, job_created_at: datetime) -> str:
    """The name of a shot's image; derived from the job, so a retried render writes the same."""
    return f"{GENERATED_PREFIX}{job_id}/{index}_{timestamp(job_created_at)}.jpg"


def thumbnail_object_name(image_object_name: str) -> str:
    return THUMBNAILS_PREFIX + image_object_name


def working_copy_object_name(upload_object_name: str, content_type: str) -> str:
    """Where an upload's working copy lives: derived from it, so a retry writes the same."""
    suffix = ".png" if content_type == "image/png" else ".jpg"
    return f"{WORKING_PREFIX}{upload_object_name}{suffix}"


def bucket_path(object_name: str) -> str:
    """The design's `gcp_bucket_path`: "{bucket}/{object name}"."""
    return f"{config.settings().bucket}/{object_name}"


def object_name_from_bucket_path(path: str) -> str:
    prefix = config.settings().bucket + "/"
    if not path.startswith(prefix):
        raise ValueError(f"{path!r} is not in bucket {config.settings().bucket!r}")
    return path[len(prefix) :]


def canonical_url(object_name: str) -> str:
    """The object's permanent URL (the bucket is private: clients get signed URLs instead)."""
    return f"{CANONICAL_HOST}/{config.settings().bucket}/{quote(object_name)}"


def object_name_from_url(url: str) -> str:
    path = unquote(urlsplit(url).path).lstrip("/")
    return object_name_from_bucket_path(path)


@functools.cache
def _key_credentials(path: str) -> Any:
    """The local signing key, parsed once (loading an RSA key costs about 50 ms)."""
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_file(path)


_default_credentials: Any = None


def _signing_arguments() -> dict[str, Any]:
    """A local key file signs locally; on GCP the runtime's account signs through IAM signBlob,
    with an access token refreshed only when it has expired."""
    global _default_credentials
    credentials_file = os.environ.get("SIGNING_CREDENTIALS_FILE")
    if credentials_file:
        return {"credentials": _key_credentials(credentials_file)}
    import google.auth
    import google.auth.transport.requests

    with _lock:
        if _default_credentials is None:
            _default_credentials, _ = google.auth.default()
        if not _default_credentials.valid:
            _default_credentials.refresh(google.auth.transport.requests.Request())
        credentials = _default_credentials
    return {
        "service_account_email": getattr(credentials, "service_account_email", None),
        "access_token": credentials.token,
    }


def signed_url(
    object_name: str,
    *,
    method: str = "GET",
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    ttl_seconds: int | None = None,
) -> tuple[str, datetime]:
    """A V4 signed URL for one object and method, and when it expires."""
    ttl = ttl_seconds or config.settings().signed_url_ttl_seconds
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
    url = (
        bucket()
        .blob(object_name)
        .generate_signed_url(
            version="v4",
            expiration=timedelta(seconds=ttl),
            method=method,
            content_type=content_type,
            headers=headers,
            api_access_endpoint=_emulator(),
            **_signing_arguments(),
        )
    )
    return url, expires_at


@dataclass(frozen=True)
class SignedUrl:
    """A signed GET URL and the instant it stops loading."""

    url: str
    expires_at: datetime


# Signatures in flight at once per process. On GCP each is an IAM signBlob round trip, so a
# gallery page of 20 images and thumbnails signs in two rounds instead of forty.
SIGNING_CONCURRENCY = 20


class _SignedUrlCache:
    """Signed GET URLs per object, reused for the first half of their lifetime.

    Signing costs an RSA signature locally and an IAM signBlob call on GCP; a gallery page
    would otherwise sign every URL on every view. A reused URL still has at least half its
    lifetime left, and a browser sees the same URL again, so its image cache works too.
    A page's missing URLs are signed concurrently, at most SIGNING_CONCURRENCY at a time.
    """

    def __init__(self, max_entries: int = 50_000, concurrency: int = SIGNING_CONCURRENCY) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[SignedUrl, float]] = OrderedDict()
        self._signers: ThreadPoolExecutor | None = None
        self.max_entries = max_entries
        self.concurrency = concurrency

    def get_many(self, object_names: Iterable[str]) -> dict[str, SignedUrl]:
        """A fresh signed URL for each object, from the cache or signed now."""
        names = list(dict.fromkeys(object_names))
        now = time.monotonic()
        found: dict[str, SignedUrl] = {}
        with self._lock:
            for name in names:
                hit = self._entries.get(name)
                if hit and hit[1] > now:
                    self._entries.move_to_end(name)
                    found[name] = hit[0]
        missing = [name for name in names if name not in found]
        if not missing:
            return found
        ttl = config.settings().signed_url_ttl_seconds
        if len(missing) == 1 or self.concurrency == 1:
            signed = [_signed_get(name, ttl) for name in missing]
        else:
            signed = list(self._pool().map(lambda name: _signed_get(name, ttl), missing))
        with self._lock:
            for name, url in zip(missing, signed, strict=True):
                self._entries[name] = (url, now + ttl / 2)
                self._entries.move_to_end(name)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return found | dict(zip(missing, signed, strict=True))

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._signers is None:
                self._signers = ThreadPoolExecutor(self.concurrency, "sign-url")
            return self._signers

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _signed_get(object_name: str, ttl: int) -> SignedUrl:
    url, expires_at = signed_url(object_name, ttl_seconds=ttl)
    return SignedUrl(url, expires_at)


signed_urls = _SignedUrlCache()


def signed_get_urls(object_names: Iterable[str]) -> dict[str, SignedUrl]:
    """Signed GET URLs for the objects, from the process's cache where one is still fresh."""
    return signed_urls.get_many(object_names)


def _transient(exc: Exception) -> Transient:
    return Transient(f"storage is unavailable: {type(exc).__name__}")


def _retryable() -> tuple[type[Exception], ...]:
    from google.api_core import exceptions as gexc  # loaded with the client

    return (
        gexc.ServerError,
        gexc.TooManyRequests,
        gexc.RequestRangeNotSatisfiable,
        ConnectionError,
        TimeoutError,
    )


def read_range(object_name: str, start: int, end: int, generation: int | None = None) -> bytes:
    """Bytes start..end (inclusive) of one object generation."""
    from google.api_core import exceptions as gexc

    try:
        return (
            bucket()
            .blob(object_name, generation=generation)
            .download_as_bytes(start=start, end=end, checksum=None)
        )
    except gexc.NotFound as exc:
        raise NotFound(f"object {object_name} is gone") from exc
    except _retryable() as exc:
        raise _transient(exc) from exc


def read(object_name: str, generation: int | None = None) -> bytes:
    from google.api_core import exceptions as gexc

    try:
        return bucket().blob(object_name, generation=generation).download_as_bytes()
    except gexc.NotFound as exc:
        raise NotFound(f"object {object_name} is gone") from exc
    except _retryable() as exc:
        raise _transient(exc) from exc


def write(
    object_name: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None
) -> Blob:
    """Write (or overwrite: deterministic names make retries idempotent) one object."""
    blob = bucket().blob(object_name)
    if metadata:
        blob.metadata = metadata
    try:
        blob.upload_from_string(data, content_type=content_type)
    except _retryable() as exc:
        raise _transient(exc) from exc
    return blob


DELETED, GONE, REPLACED = "deleted", "gone", "replaced"


def delete(object_name: str, generation: int | None = None) -> str:
    """Delete an object, and only while it is `generation` when one is given (a precondition
    Cloud Storage checks): DELETED, GONE (nothing there) or REPLACED (another generation)."""
    from google.api_core import exceptions as gexc

    try:
        bucket().blob(object_name).delete(if_generation_match=generation)
    except gexc.NotFound:
        return GONE
    except gexc.PreconditionFailed:
        return REPLACED
    except _retryable() as exc:
        raise _transient(exc) from exc
    return DELETED
