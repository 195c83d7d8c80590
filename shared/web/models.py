"""The request and response pieces every route shares: strict bodies, text that is not blank,
and the error body. Each capability keeps its own shapes beside its routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

# At least one character that is not whitespace, no NUL (PostgreSQL text cannot hold it).
NON_BLANK_TEXT = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


class Strict(BaseModel):
    """A request body: strict types, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """Every error answer: 4xx and 5xx alike."""

    error: ErrorInfo
