"""`dispatch`: route one request, authenticate, run the handler, serialise through the route's
response model and map every failure to a JSON error body, with CORS on every answer.

`dispatch(router, request, authenticate)` takes a Werkzeug request (what functions-framework
hands to an HTTP function) and returns a Werkzeug response, so tests drive it without the
framework.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from shared import config, log
from shared.errors import AppError, InvalidInput, MethodNotAllowed, NotFound, PayloadTooLarge
from shared.web.request import ApiRequest, finish_body
from shared.web.router import Reply, Route, Router


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
    headers = error.headers()
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
    finish_body(request)
    return response


def origin_allowed(origin: str, allowed: Sequence[str]) -> bool:
    """Whether an entry of `allowed` admits the origin: the same origin, `*` for any, or
    `scheme://host:*` for that host on any port (the local stack's development origins)."""
    if origin in allowed or "*" in allowed:
        return True
    scheme_host, _, port = origin.rpartition(":")
    return port.isdigit() and f"{scheme_host}:*" in allowed


def _settings() -> config.Settings:
    """The process's configuration, as the api reads it: one that lets every origin call the api
    (`*` in CORS_ORIGINS, which no deploy path sets) is logged once as a WARNING."""
    settings = config.settings()
    _warn_of_any_origin(settings.cors_origins)
    return settings


@functools.cache
def _warn_of_any_origin(origins: tuple[str, ...]) -> None:
    if "*" in origins:
        log.warning(
            "CORS_ORIGINS allows every origin (*): any web page may call the api from a browser",
            action="api.cors_any_origin",
            function="api",
            cors_origins=list(origins),
        )


def _cors_headers(request: Request) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if not origin or not origin_allowed(origin, _settings().cors_origins):
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Vary": "Origin",
        "Access-Control-Expose-Headers": (
            "Retry-After, Location, ETag, Preference-Applied, RateLimit, RateLimit-Policy"
        ),
    }


def _preflight(request: Request) -> Response:
    headers = _cors_headers(request)
    if headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": (
                    "Authorization, Content-Type, Idempotency-Key, Prefer, If-None-Match"
                ),
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
    """Route one request; every failure becomes a JSON error body, never a stack trace. What
    the handler left of the body is read and dropped before the answer goes (`finish_body`)."""
    try:
        return _answer(router, request, authenticate)
    finally:
        finish_body(request)


def _answer(router: Router, request: Request, authenticate: Callable[[Request], Any]) -> Response:
    started = time.monotonic()
    trace = log.trace_field(request.headers.get("X-Cloud-Trace-Context"), _settings().project)
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
