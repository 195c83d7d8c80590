"""`Header`: an optional header a route reads or answers, as the OpenAPI document describes it.

Apart from the router, so that a service declaring its headers (the limits' RateLimit headers,
which register_upload's service imports) does not load pydantic with the route table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Header:
    """An optional header a route reads or answers, as the OpenAPI document describes it."""

    name: str
    description: str
    max_length: int
