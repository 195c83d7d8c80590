"""The `google.cloud.storage.object.v1.finalized` CloudEvent as Eventarc delivers it.

Binary content mode: the CloudEvent attributes travel as `ce-*` headers, the data (the GCS
object resource, as the JSON API returns it) is the JSON body.
"""

from __future__ import annotations

import json
import secrets
import string
from typing import Any
from urllib.parse import quote

FINALIZED = "google.cloud.storage.object.v1.finalized"
# Fields of the JSON API's object resource that the event carries, as strings where GCS does.
_STRING_FIELDS = ("generation", "metageneration", "size")
_DROPPED = ("acl",)
_SAFE = "".join(c for c in string.printable if c not in ' "%' and c not in string.whitespace)


def event_id() -> str:
    """A new id for one delivery series (Eventarc's ids are decimal, like Pub/Sub message ids)."""
    return str(secrets.randbelow(10**16 - 10**15) + 10**15)


def object_data(resource: dict[str, Any]) -> dict[str, Any]:
    """The event data from an object resource: no ACLs, no nulls, numbers as strings."""
    data = {k: v for k, v in resource.items() if v is not None and k not in _DROPPED}
    for key in _STRING_FIELDS:
        if key in data:
            data[key] = str(data[key])
    return data


def _header(value: str) -> str:
    """A header value per the CloudEvents HTTP binding: non-printable ASCII percent-encoded."""
    return quote(value, safe=_SAFE)


def finalized(resource: dict[str, Any], ce_id: str) -> tuple[dict[str, str], bytes]:
    """Headers and body of the finalize CloudEvent for an object resource."""
    data = object_data(resource)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "ce-specversion": "1.0",
        "ce-type": FINALIZED,
        "ce-source": _header(f"//storage.googleapis.com/projects/_/buckets/{data['bucket']}"),
        "ce-subject": _header(f"objects/{data['name']}"),
        "ce-id": ce_id,
        "ce-time": data.get("updated") or data.get("timeCreated", ""),
        "ce-bucket": data["bucket"],
    }
    return headers, json.dumps(data).encode()
