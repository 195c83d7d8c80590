"""The media bucket's CORS configuration: one definition for every place that sets it.

`bucket_cors(origins)` is the value of the GCS bucket resource's `cors` field (JSON API; the
same list `gcloud storage buckets update --cors-file` takes). The local stack sets it on the
emulator's bucket (tools/stack/gcs.py enforces it as GCS does); a deploy path sets the same
value on the real bucket with the deployment's CORS_ORIGINS.

GCS uses `responseHeader` both ways: a preflight is refused unless every request header it
announces is listed, and an answer exposes the listed headers to the page. So the list holds the
request headers the signed upload PUT requires (shared/uploads/routes.py signs them; the
stack test of the bucket's CORS preflights with exactly the headers the api hands out) and the
response headers a page may read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SIGNED_PUT_HEADERS = (
    "Content-Type",
    "x-goog-content-length-range",
    "x-goog-if-generation-match",
    "x-goog-meta-session-id",
)
EXPOSED_HEADERS = ("Content-Length", "ETag")
METHODS = ("GET", "HEAD", "PUT")
MAX_AGE_SECONDS = 3600


def bucket_cors(origins: Sequence[str]) -> list[dict[str, Any]]:
    """The bucket's `cors` field for these origins."""
    return [
        {
            "origin": list(origins),
            "method": list(METHODS),
            "responseHeader": [*SIGNED_PUT_HEADERS, *EXPOSED_HEADERS],
            "maxAgeSeconds": MAX_AGE_SECONDS,
        }
    ]
