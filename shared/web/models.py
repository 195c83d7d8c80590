"""The request and response pieces every route shares: the base of every shape, strict bodies,
text that is not blank, and the error body. Each capability keeps its own shapes beside its
routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

# At least one character that is not whitespace, no NUL (PostgreSQL text cannot hold it).
NON_BLANK_TEXT = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
# No NUL: what the request parser lets through (shared/web/request.py), said in the contract.
NO_NUL_TEXT = r"^[^\u0000]*$"


class Model(BaseModel):
    """The base of every request and response shape: its validator is built on first use, not
    at import, since a request uses two or three of the thirty (cold start)."""

    model_config = ConfigDict(defer_build=True)


class Strict(Model):
    """A request body: strict types, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


class ErrorInfo(Model):
    code: str
    message: str
    details: Any = None


class ErrorBody(Model):
    """Every error answer: 4xx and 5xx alike."""

    error: ErrorInfo
