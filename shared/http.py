"""The `api` function's plumbing: the Router of Routes, handler Replies, and `dispatch`, which
routes, authenticates, runs the handler, serialises through the route's response model and maps
every failure to a JSON error body, with CORS on every answer.

`dispatch(router, request, authenticate)` takes a Werkzeug request (what functions-framework
hands to an HTTP function) and returns a Werkzeug response, so tests drive it without the
framework. Each `Route` also carries what the OpenAPI document says of it (tools/openapi.py
reads it): request and query models, response model and status, extra error statuses.
Handlers read their input through `ApiRequest` (shared/api_request.py).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from shared import config, log
from shared.api_request import MAX_JSON_BYTES, ApiRequest
from shared.errors import AppError, InvalidInput, MethodNotAllowed, NotFound, PayloadTooLarge

__all__ = ["MAX_JSON_BYTES", "ApiRequest", "Reply", "Route", "Router", "dispatch"]


@dataclass(frozen=True)
class Reply:
    """A handler's answer: status, a JSON-able body (dict or model) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ApiRequest], Reply]


@dataclass(frozen=True)
class Header:
    """An optional request header a route reads, as the OpenAPI document describes it."""

    name: str
    description: str
    max_length: int


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
    headers: tuple[Header, ...] = ()  # optional request headers the handler reads

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


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response; `body` may be JSON already encoded (bytes)."""
    if body is None:
        response = Response(status=status)
    else:
        payload = (
            body
            if isinstance(body, bytes)
            else json.dumps(body, default=_default, ensure_ascii=False, separators=(",", ":"))
        )
        response = Response(payload, status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: AppError) -> Response:
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.details["allowed"])
    return json_response(error.http_status, error.to_body(), headers)


def _from_werkzeug(exc: HTTPException) -> AppError:
    """Werkzeug's own refusals (body over the limit, unreadable body, a path the framework's
    router cannot match) as project errors."""
    if exc.code == 413:
        return PayloadTooLarge("the body is too large")
    if exc.code == 404:
        return NotFound("no such route")
    return InvalidInput("the request could not be read")


def framework_error(exc: HTTPException, request: Request) -> Response:
    """A refusal made by functions-framework before `dispatch` runs, as a JSON error."""
    response = error_response(_from_werkzeug(exc))
    response.headers.update(_cors_headers(request))
    return response


def _cors_headers(request: Request) -> dict[str, str]:
    origin = request.headers.get("Origin")
    allowed = config.settings().cors_origins
    if not origin or not (origin in allowed or "*" in allowed):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Vary": "Origin",
        "Access-Control-Expose-Headers": "Retry-After, Location",
    }


def _preflight(request: Request) -> Response:
    headers = _cors_headers(request)
    if headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key",
                "Access-Control-Max-Age": "3600",
            }
        )
    return Response(status=204, headers=headers)


def _serialise(route: Route, reply: Reply) -> Any:
    """The reply's body: through the route's response model when declared (encoded to JSON by
    pydantic at once), else as given."""
    if reply.body is None:
        return None
    adapter = route.adapter
    if adapter is None or not 200 <= reply.status < 300:
        return reply.body
    return adapter.dump_json(adapter.validate_python(reply.body))


def _handle(router: Router, request: Request, authenticate: Callable[[Request], Any]) -> Response:
    route, params = router.match(request.method, request.path)
    # One byte over the limit: a chunked body (no Content-Length) is cut there, so a body longer
    # than the limit is told apart from one exactly at it.
    request.max_content_length = route.max_body_bytes + 1
    api_request = ApiRequest(raw=request, params=params)
    if route.authenticated:
        api_request.user = authenticate(request)
    reply = route.handler(api_request)
    return json_response(reply.status, _serialise(route, reply), reply.headers)


def dispatch(router: Router, request: Request, authenticate: Callable[[Request], Any]) -> Response:
    """Route one request; every failure becomes a JSON error body, never a stack trace."""
    started = time.monotonic()
    trace = log.trace_field(request.headers.get("X-Cloud-Trace-Context"), config.settings().project)
    with log.bind(function="api", **trace):
        if request.method == "OPTIONS":
            return _preflight(request)
        try:
            try:
                response = _handle(router, request, authenticate)
            except HTTPException as exc:
                raise _from_werkzeug(exc) from exc
        except AppError as error:
            if error.http_status >= 500:
                log.warning(error.message, action="api.unavailable", code=error.code)
            response = error_response(error)
        except Exception as exc:
            log.error("unhandled error", action="api.crash", exc=exc, path=request.path)
            response = error_response(AppError("internal error"))
        response.headers.update(_cors_headers(request))
        log.info(
            f"{request.method} {request.path} {response.status_code}",
            action="api.request",
            status=response.status_code,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        return response
