"""The `api` function's plumbing: routing, JSON bodies, CORS, and mapping errors to responses.

`dispatch(request)` takes a Werkzeug request (what functions-framework hands to an HTTP
function) and returns a Werkzeug response, so tests drive it without the framework.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from werkzeug.wrappers import Request, Response

from shared import config, log
from shared.errors import (
    AppError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)

MAX_JSON_BYTES = 64 * 1024
M = TypeVar("M", bound=BaseModel)


@dataclass
class ApiRequest:
    """What a route handler sees: the raw request, its path parameters and the caller."""

    raw: Request
    params: dict[str, str] = field(default_factory=dict)
    user: dict[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; anything else is a 400 (or 413/415)."""
        if self.raw.content_length is not None and self.raw.content_length > MAX_JSON_BYTES:
            raise PayloadTooLarge(f"a JSON body is limited to {MAX_JSON_BYTES} bytes")
        mimetype = self.raw.mimetype or ""
        if mimetype != "application/json":
            raise UnsupportedMediaType("send the body as application/json")
        data = self.raw.get_data(cache=True)
        if len(data) > MAX_JSON_BYTES:
            raise PayloadTooLarge(f"a JSON body is limited to {MAX_JSON_BYTES} bytes")
        try:
            body = json.loads(data or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput("the body is not valid JSON", code="malformed_json") from exc
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object", code="malformed_json")
        return body

    def body(self, model: type[M]) -> M:
        """The JSON body validated by a strict pydantic model; field errors are a 400."""
        try:
            return model.model_validate(self.json(), strict=True)
        except ValidationError as exc:
            details = [
                {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]
            raise InvalidInput("the body has invalid fields", details=details) from exc

    def query(self, name: str) -> str | None:
        return self.raw.args.get(name)

    @property
    def user_id(self) -> Any:
        assert self.user is not None, "route requires authentication"
        return self.user["id"]


@dataclass(frozen=True)
class Reply:
    """A handler's answer: status, a JSON-able body and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ApiRequest], Reply]


@dataclass(frozen=True)
class Route:
    """One route, with what the OpenAPI document says of it."""

    method: str
    template: str
    handler: Handler
    authenticated: bool
    pattern: re.Pattern[str]
    body: type[BaseModel] | None = None
    response: Any = None
    summary: str = ""


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
        body: type[BaseModel] | None = None,
        response: Any = None,
        summary: str = "",
    ) -> None:
        """Register a route; body/response/summary describe it in the OpenAPI document."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        summary = summary or (handler.__doc__ or "").strip().split("\n")[0]
        self.routes.append(
            Route(
                method,
                template,
                handler,
                authenticated,
                re.compile(f"^{regex}$"),
                body,
                response,
                summary,
            )
        )

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = []
        for route in self.routes:
            found = route.pattern.match(path)
            if found:
                if route.method == method:
                    return route, found.groupdict()
                allowed.append(route.method)
        if allowed:
            raise AppError(
                f"{method} is not allowed here",
                code="method_not_allowed",
                details={"allowed": allowed},
            ) from None
        raise NotFound("no such route")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    payload = "" if body is None else json.dumps(body, default=_default, ensure_ascii=False)
    response = Response(
        payload, status=status, mimetype="application/json" if body is not None else None
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: AppError) -> Response:
    headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    return json_response(error.http_status, error.to_body(), headers)


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


def dispatch(
    router: Router, request: Request, authenticate: Callable[[Request], dict[str, Any]]
) -> Response:
    """Route one request; every failure becomes a JSON error body, never a stack trace."""
    started = time.monotonic()
    trace = log.trace_field(request.headers.get("X-Cloud-Trace-Context"), config.settings().project)
    with log.bind(function="api", **trace):
        if request.method == "OPTIONS":
            return _preflight(request)
        try:
            route, params = router.match(request.method, request.path)
            api_request = ApiRequest(raw=request, params=params)
            if route.authenticated:
                api_request.user = authenticate(request)
            reply = route.handler(api_request)
            response = json_response(reply.status, reply.body, reply.headers)
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
