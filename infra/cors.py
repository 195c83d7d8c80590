"""The media bucket's CORS rule: the one definition every place that sets it reads.

`bucket_cors(origins)` is the value of the GCS bucket resource's `cors` field (JSON API; the
same list `gcloud storage buckets update --cors-file` takes). Each path gives it its own origins
and nothing else:
- infra/deploy_gcloud.py sets it on the real bucket with `--cors-origins`;
- terraform reads `terraform_rule()` from its generated inputs (infra/tfvars.py writes it into
  functions.auto.tfvars.json as `bucket_cors`) and adds `var.cors_origins`;
- the local stack sets it on the emulator's bucket with the stack's origins (tools/stack/gcs.py
  enforces it as GCS does).

GCS uses `responseHeader` both ways: a preflight is refused unless every request header it
announces is listed, and an answer exposes the listed headers to the page. So the list holds
every request header the signed upload PUT signs (shared/uploads/routes.py; the client must send
each, so a browser's preflight announces each: tests/infra/test_bucket_cors.py reads them from a
URL the signing code makes) and the response headers a page may read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

METHODS = ("GET", "HEAD", "PUT")  # signed GETs load images; a direct upload is a signed PUT
SIGNED_PUT_HEADERS = (
    "Content-Type",
    "x-goog-content-length-range",
    "x-goog-if-generation-match",
    "x-goog-meta-session-id",
)
EXPOSED_HEADERS = ("Content-Length", "ETag")
RESPONSE_HEADERS = (*SIGNED_PUT_HEADERS, *EXPOSED_HEADERS)
MAX_AGE_SECONDS = 3600


def bucket_cors(origins: Sequence[str]) -> list[dict[str, Any]]:
    """The bucket's `cors` field for these origins (JSON API names)."""
    return [
        {
            "origin": list(origins),
            "method": list(METHODS),
            "responseHeader": list(RESPONSE_HEADERS),
            "maxAgeSeconds": MAX_AGE_SECONDS,
        }
    ]


def terraform_rule() -> dict[str, Any]:
    """The same rule but its origins, in the terraform `cors` block's names."""
    (rule,) = bucket_cors(())
    return {
        "method": rule["method"],
        "response_header": rule["responseHeader"],
        "max_age_seconds": rule["maxAgeSeconds"],
    }
