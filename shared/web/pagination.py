"""Cursor pagination: `?limit=&cursor=` in, `{"items": [...], "next_cursor": ...}` out.

A cursor is the keyset of the last row served (for example its (created_at, id)), encoded as
opaque URL-safe base64 JSON. Keysets are stable under concurrent inserts: a page never repeats
or skips a row that existed when the first page was read.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import Field

from shared.errors import InvalidInput
from shared.web.models import Model

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageQuery(Model):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(
        None, max_length=512, description="`next_cursor` of the previous page."
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value if isinstance(value, int) else str(value)


def encode(*keyset: Any) -> str:
    """An opaque cursor for a keyset such as (created_at, id)."""
    raw = json.dumps([_plain(v) for v in keyset], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_keyset(cursor: str | None, *parsers: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    """The keyset a cursor carries, each value through its parser; None for the first page."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(parsers):
            raise ValueError("wrong keyset size")
        return tuple(parse(value) for parse, value in zip(parsers, values, strict=True))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidInput("the cursor is not valid", details={"cursor": cursor}) from exc


def _text(value: Any) -> str:
    """A cursor value that must be a JSON string (a forged cursor may hold anything)."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def timestamp(value: Any) -> datetime:
    """A cursor's timestamp; naive ones are refused (the keyset compares instants)."""
    parsed = datetime.fromisoformat(_text(value))
    if parsed.tzinfo is None:
        raise ValueError("timestamp without a zone")
    return parsed


def row_id(value: Any) -> str:
    return str(uuid.UUID(_text(value)))


def index(value: Any) -> int:
    if type(value) is not int:
        raise ValueError("not an integer")
    return value


def decode(cursor: str | None) -> tuple[datetime, str] | None:
    """The (timestamp, id) keyset a cursor carries, or None for the first page."""
    found = decode_keyset(cursor, timestamp, row_id)
    return (found[0], found[1]) if found else None


def page(
    rows: Sequence[dict[str, Any]],
    page_size: int,
    key: Callable[[dict[str, Any]], tuple[datetime, Any]],
    render: Callable[[list[dict[str, Any]]], list[Any]],
) -> dict[str, Any]:
    """A page body from up to page_size + 1 rows (the extra row only says another page exists);
    `render` turns the served rows into items, all at once (their URLs are signed together)."""
    served = list(rows[:page_size])
    next_cursor = encode(*key(served[-1])) if len(rows) > page_size and served else None
    return {"items": render(served), "next_cursor": next_cursor}
