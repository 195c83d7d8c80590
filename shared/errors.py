"""The error family: every failure the code reports is one of these.

Each error knows its HTTP status (for the `api` function) and whether it is retryable (for event
functions: retryable errors are raised again so the platform redelivers; the rest are recorded
and acknowledged).
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every expected error; never shows internals to a client."""

    code = "internal"
    http_status = 500
    retryable = False
    retry_after: int | None = None

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def headers(self) -> dict[str, str]:
        """Response headers the error's answer carries."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class InvalidInput(AppError):
    code = "invalid_input"
    http_status = 400


class Unauthenticated(AppError):
    code = "unauthenticated"
    http_status = 401


class Forbidden(AppError):
    code = "forbidden"
    http_status = 403


class NotFound(AppError):
    code = "not_found"
    http_status = 404


class MethodNotAllowed(AppError):
    code = "method_not_allowed"
    http_status = 405


class Conflict(AppError):
    code = "conflict"
    http_status = 409


class PayloadTooLarge(AppError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(AppError):
    code = "unsupported_media_type"
    http_status = 415


class Unprocessable(AppError):
    code = "unprocessable"
    http_status = 422


class RateLimited(AppError):
    """A limit is reached: Retry-After, and any headers describing the limits (RateLimit)."""

    code = "rate_limited"
    http_status = 429
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: int = 5,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.extra_headers = headers or {}

    def headers(self) -> dict[str, str]:
        return {**self.extra_headers, **super().headers()}


class Transient(AppError):
    """A dependency failed in a way that a later attempt may not: retry."""

    code = "unavailable"
    http_status = 503
    retryable = True
    retry_after = 2


class ConfigError(Exception):
    """The environment does not describe a usable configuration; lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))
        self.problems = problems
