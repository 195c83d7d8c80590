"""What route handlers see and return: ApiRequest (validated body and query), Reply, and the
Router of Routes. Each `Route` also carries what the OpenAPI document says of it
(tools/openapi.py reads it): request and query models, response model and status, extra error
statuses. shared/dispatch.py runs a request through a router.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from werkzeug.wrappers import Request

from shared.errors import (
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)

MAX_JSON_BYTES = 64 * 1024
M = TypeVar("M", bound=BaseModel)
_BAD_TEXT = re.compile(r"[\x00\ud800-\udfff]")


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
        data = self.raw.get_data(cache=True)
        if len(data) > limit:
            raise PayloadTooLarge(f"the body is limited to {limit} bytes")
        if optional and not data.strip():
            return {}
        try:
            body = json.loads(data)
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
        values = {name: self.raw.args.get(name) for name in model.model_fields}
        present = {k: v for k, v in values.items() if v is not None}
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


@dataclass(frozen=True)
class Reply:
    """A handler's answer: status, a JSON-able body (dict or model) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ApiRequest], Reply]


@dataclass(frozen=True)
class Route:
    """One route, with what the OpenAPI document says of it.

    `response` is the model of a 2xx body (the body is serialised through it, so nothing
    undocumented leaves); `errors` lists statuses beyond those the route's shape implies.
    """

    method: str
    template: str
    handler: Handler
    authenticated: bool
    pattern: re.Pattern[str]
    body: type[BaseModel] | None = None
    body_required: bool = True
    body_media_type: str = "application/json"
    max_body_bytes: int = MAX_JSON_BYTES
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    summary: str = ""
    errors: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.template)

    @property
    def adapter(self) -> TypeAdapter[Any] | None:
        return _adapter(self.response) if self.response is not None else None


_adapters: dict[Any, TypeAdapter[Any]] = {}


def _adapter(model: Any) -> TypeAdapter[Any]:
    if model not in _adapters:
        _adapters[model] = TypeAdapter(model)
    return _adapters[model]


def is_uuid_param(name: str) -> bool:
    """Path parameters named `id` or `*_id` are UUIDs (a malformed one names nothing: 404)."""
    return name == "id" or name.endswith("_id")


class Router:
    """Routes by method and path template (`/v1/sessions/{session_id}`)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        authenticated: bool = True,
        **meta: Any,
    ) -> None:
        """Add a route; `meta` takes Route's documentation fields (body, response, ...)."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        pattern = re.compile(f"^{regex}$")
        self.routes.append(Route(method, template, handler, authenticated, pattern, **meta))

    def route(
        self, method: str, template: str, *, authenticated: bool = True, **meta: Any
    ) -> Callable[[Handler], Handler]:
        """Decorator form of `add`."""

        def register(handler: Handler) -> Handler:
            self.add(method, template, handler, authenticated=authenticated, **meta)
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = []
        for route in self.routes:
            found = route.pattern.match(path)
            if found:
                if route.method == method:
                    return route, _checked_params(found.groupdict())
                allowed.append(route.method)
        if allowed:
            raise MethodNotAllowed(
                f"{method} is not allowed here", details={"allowed": allowed}
            ) from None
        raise NotFound("no such route")


def _checked_params(params: dict[str, str]) -> dict[str, str]:
    for name, value in params.items():
        if is_uuid_param(name):
            try:
                params[name] = str(uuid.UUID(value))
            except ValueError:
                raise NotFound(f"no such {name.removesuffix('_id') or 'resource'}") from None
    return params
