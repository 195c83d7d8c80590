"""How rows become API resources: the table's fields, plus short-lived signed URLs.

The bucket is private: `gcp_url` is the canonical (unusable without credentials) address, and
`url` / `thumbnail_signed_url` are V4 signed GET URLs that expire after SIGNED_URL_TTL_SECONDS
(reused from a per-process cache for the first half of that, see storage.signed_get_url).
"""

from __future__ import annotations

from typing import Any

from shared import storage

_INTERNAL = ("request_hash", "created")


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _INTERNAL}


def generated_image(row: dict[str, Any]) -> dict[str, Any]:
    resource = _public(row)
    resource["url"] = storage.signed_get_url(
        storage.object_name_from_bucket_path(row["gcp_bucket_path"])
    )
    thumbnail = row.get("thumbnail_url")
    resource["thumbnail_signed_url"] = (
        storage.signed_get_url(storage.object_name_from_url(thumbnail)) if thumbnail else None
    )
    return resource


def reference_image(row: dict[str, Any]) -> dict[str, Any]:
    resource = _public(row)
    resource["url"] = storage.signed_get_url(
        storage.object_name_from_bucket_path(row["gcp_bucket_path"])
    )
    return resource
