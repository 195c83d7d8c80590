"""The requests of tests/data (see its README), with a test's own object in them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

DATA = Path(__file__).parent / "data"


def request(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The headers and JSON body of tests/data/<name>.json."""
    recorded = json.loads((DATA / f"{name}.json").read_text())
    return recorded["headers"], recorded["body"]


def finalized(
    bucket: str, name: str, generation: int, event_id: str, /, **fields: Any
) -> tuple[dict[str, str], bytes]:
    """The recorded finalize event with object `name` of `bucket` at `generation` in place of
    the recorded object (its links and ids too); `fields` set the resource's other fields
    (size, contentType, metadata ...; None leaves one out, as GCS does). Headers and body,
    ready to POST."""
    headers, body = request("storage-object-finalized")
    text = json.dumps([headers, body])
    for recorded, own in (
        (quote(body["name"], safe=""), quote(name, safe="")),
        (body["name"], name),
        (body["bucket"], bucket),
        (body["generation"], str(generation)),
    ):
        text = text.replace(recorded, own)
    headers, body = json.loads(text)
    headers["ce-id"] = event_id
    resource = {k: v for k, v in {**body, **fields}.items() if v is not None}
    return headers, json.dumps(resource).encode()
