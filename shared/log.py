"""Structured logging: one JSON object per line on stdout, in Cloud Logging's shape.

Per-invocation context (function, event id, job id, trace) lives in a contextvar, so every line
an invocation writes carries it without threading a logger through the code.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import sys
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039

_SECRET_PATTERNS = [
    (re.compile(r"(X-Goog-Signature=)[0-9a-fA-F]+"), r"\1[redacted]"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._\-]+"), r"\1[redacted]"),
    (re.compile(r"sk-[A-Za-z0-9_\-]{8,}"), "[redacted]"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_[redacted]"),
]


def redact(text: str) -> str:
    """Remove signatures, bearer tokens and API keys from a string."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add fields to every log line written inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def trace_field(header: str | None, project: str) -> dict[str, str]:
    """Cloud Logging's trace field from an `X-Cloud-Trace-Context: TRACE/SPAN;o=1` header."""
    if not header:
        return {}
    trace_id = header.split("/", 1)[0].strip()
    if not re.fullmatch(r"[0-9a-fA-F]{1,64}", trace_id):
        return {}
    return {"logging.googleapis.com/trace": f"projects/{project}/traces/{trace_id}"}


def _emit(severity: str, message: str, action: str | None, fields: dict[str, Any]) -> None:
    entry: dict[str, Any] = {
        "severity": severity,
        "message": redact(message),
        "time": datetime.now(UTC).isoformat(),
    }
    if action:
        entry["action"] = action
    entry.update(_context.get())
    entry.update(fields)
    line = json.dumps(entry, default=str, ensure_ascii=False)
    sys.stdout.write(redact(line) + "\n")
    sys.stdout.flush()


def _enabled(severity: str) -> bool:
    order = ["DEBUG", "INFO", "WARNING", "ERROR"]
    wanted = os.environ.get("LOG_LEVEL", "INFO").upper()
    return order.index(severity) >= order.index(wanted if wanted in order else "INFO")


def debug(message: str, action: str | None = None, **fields: Any) -> None:
    if _enabled("DEBUG"):
        _emit("DEBUG", message, action, fields)


def info(message: str, action: str | None = None, **fields: Any) -> None:
    if _enabled("INFO"):
        _emit("INFO", message, action, fields)


def warning(message: str, action: str | None = None, **fields: Any) -> None:
    if _enabled("WARNING"):
        _emit("WARNING", message, action, fields)


def error(
    message: str, action: str | None = None, exc: BaseException | None = None, **fields: Any
) -> None:
    if exc is not None:
        fields["stack_trace"] = "".join(traceback.format_exception(exc))
    _emit("ERROR", message, action, fields)
