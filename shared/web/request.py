"""What a route handler reads: `ApiRequest`, with the JSON body validated by a strict pydantic
model, the query by a lax one, and the path parameters and caller filled in by the dispatcher.
Every refusal is a project error (400, 413 or 415) with details naming the field. And what is
left of a body once the answer is made: `finish_body`.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from shared.errors import AppError, InvalidInput, PayloadTooLarge, UnsupportedMediaType

MAX_JSON_BYTES = 64 * 1024
DRAIN_MAX_BYTES = 32 * 1024 * 1024  # Cloud Run's limit on a request body
_DRAIN_PIECE = 64 * 1024
M = TypeVar("M", bound=BaseModel)
_BAD_TEXT = re.compile(r"[\x00\ud800-\udfff]")


def _number(text: str) -> float | int:
    """A JSON number with no fractional part is an integer, as JSON Schema counts it (`1.0`)."""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


def _no_constant(name: str) -> None:
    """NaN and Infinity are not JSON, whatever Python's parser allows."""
    raise ValueError(f"{name} is not JSON")


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def _check_text(value: Any, where: str = "") -> None:
    """Refuse NUL characters and lone surrogates: PostgreSQL text and UTF-8 hold neither."""
    if isinstance(value, str):
        if _BAD_TEXT.search(value):
            raise InvalidInput(
                "text must be valid Unicode without NUL characters",
                details=[{"field": where or "(body)", "problem": "invalid character"}],
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where)
            _check_text(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_text(item, f"{where}.{index}" if where else str(index))


@contextlib.contextmanager
def reading_body() -> Iterator[None]:
    """A body the server cannot decode (a garbage chunk size) is a 400: the server raises its
    own error class for it (gunicorn's ParseException), which Werkzeug passes through."""
    try:
        yield
    except (HTTPException, AppError):
        raise
    except Exception as exc:
        raise InvalidInput("the body could not be read", code="malformed_body") from exc


def finish_body(raw: Request) -> None:
    """Read and drop what the handler left of the body; leave the request an empty stream.

    functions-framework reads the whole body after every response (its `read_request` hook,
    so the client can read the answer before the connection closes), into memory and outside
    any route: a body over the route's limit, or one the server cannot decode, raises there and
    the client gets an HTML 500. Reading the rest here, in pieces that are dropped, gives the
    client the same chance to read the answer; a body past `DRAIN_MAX_BYTES`, or one that
    cannot be decoded, is left unread and the server closes the connection.
    """
    raw.max_content_length = DRAIN_MAX_BYTES  # for a stream not opened yet
    with contextlib.suppress(Exception):  # past the limit, or undecodable: stop reading
        while raw.stream.read(_DRAIN_PIECE):
            pass
    raw.stream = io.BytesIO()  # what the framework's hook reads next: nothing


@dataclass
class ApiRequest:
    """What a route handler sees: the raw request, its path parameters and the caller."""

    raw: Request
    params: dict[str, str] = field(default_factory=dict)
    user: dict[str, Any] | None = None

    def json(self, *, optional: bool = False) -> dict[str, Any]:
        """The body as a JSON object (`{}` for an empty optional body); else 400, 413 or 415."""
        limit = (self.raw.max_content_length or MAX_JSON_BYTES + 1) - 1
        if self.raw.content_length is not None and self.raw.content_length > limit:
            raise PayloadTooLarge(f"the body is limited to {limit} bytes")
        if optional and not self.raw.content_length and not self.raw.headers.get("Content-Type"):
            return {}
        if self.raw.mimetype != "application/json":
            raise UnsupportedMediaType("send the body as application/json")
        with reading_body():
            data = self.raw.get_data(cache=True)
        if len(data) > limit:
            raise PayloadTooLarge(f"the body is limited to {limit} bytes")
        if optional and not data:  # whitespace alone is not JSON: a 400 below
            return {}
        try:
            body = json.loads(data, parse_float=_number, parse_constant=_no_constant)
            _check_text(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidInput("the body is not valid JSON", code="malformed_json") from exc
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object", code="malformed_json")
        return body

    def body(self, model: type[M], *, optional: bool = False) -> M:
        """The JSON body validated by a strict pydantic model; field errors are a 400."""
        try:
            return model.model_validate(self.json(optional=optional), strict=True)
        except ValidationError as exc:
            raise InvalidInput("the body has invalid fields", details=_field_errors(exc)) from exc

    def query(self, name: str) -> str | None:
        return self.raw.args.get(name)

    def query_model(self, model: type[M]) -> M:
        """The query string validated by a pydantic model (lax: "5" is an int); else 400."""
        given = {n: self.raw.args.getlist(n) for n in model.model_fields if n in self.raw.args}
        repeated = sorted(n for n, v in given.items() if len(v) > 1)
        if repeated:
            raise InvalidInput(
                "a query parameter is repeated",
                details=[{"field": n, "problem": "given more than once"} for n in repeated],
            )
        present = {n: v[0] for n, v in given.items()}
        _check_text(present)
        try:
            return model.model_validate(present)
        except ValidationError as exc:
            raise InvalidInput(
                "the query has invalid parameters", details=_field_errors(exc)
            ) from exc

    @property
    def user_id(self) -> Any:
        assert self.user is not None, "route requires authentication"
        return self.user["id"]
