"""Cursor pagination: `?limit=&cursor=` in, `{"items": [...], "next_cursor": ...}` out.

A cursor is the keyset of the last row served (for example its (created_at, id)), encoded as
opaque URL-safe base64 JSON. Keysets are stable under concurrent inserts: a page never repeats
or skips a row that existed when the first page was read.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from shared.errors import InvalidInput

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidInput(
            f"limit must be an integer from 1 to {MAX_LIMIT}", details={"limit": raw}
        )
    return int(raw)


def encode(timestamp: datetime, row_id: Any) -> str:
    raw = json.dumps([timestamp.isoformat(), str(row_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None) -> tuple[datetime, str] | None:
    """The keyset a cursor carries, or None for the first page."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        timestamp, row_id = json.loads(raw)
        return datetime.fromisoformat(timestamp), str(row_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidInput("the cursor is not valid", details={"cursor": cursor}) from exc


def page(
    rows: Sequence[dict[str, Any]],
    page_size: int,
    key: Callable[[dict[str, Any]], tuple[datetime, Any]],
    render: Callable[[dict[str, Any]], Any],
) -> dict[str, Any]:
    """A page body from up to page_size + 1 rows (the extra row only says another page exists)."""
    served = list(rows[:page_size])
    next_cursor = encode(*key(served[-1])) if len(rows) > page_size and served else None
    return {"items": [render(r) for r in served], "next_cursor": next_cursor}
