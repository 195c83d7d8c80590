"""The OpenAPI 3.1 document of the `api` function, generated from its route table.

Every route's method, path, summary, body, query and response models and error statuses come
from `shared.routes.router()` (see shared/web/router.py's Route), and the schemas from the same pydantic
models that validate requests and serialise responses; the requests the system sends (job
webhooks) are its `webhooks`. Never edit openapi/openapi.json by hand:

    python -m tools.openapi          # write openapi/openapi.json
    python -m tools.openapi --check  # exit 1 when the committed document is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.web.models import ErrorBody
from shared.web.router import Route, Router, Webhook, is_uuid_param

DOCUMENT = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"
REF = "#/components/schemas/{model}"
RETRY_AFTER = {"schema": {"type": "integer"}, "description": "Seconds to wait"}
ERROR_TEXT = {
    400: "Invalid input: malformed JSON, wrong types, unknown fields, a bad cursor or limit, a "
    "malformed header",
    401: "Missing, malformed, expired or wrongly signed bearer token",
    404: "No such resource (another user's resource answers the same)",
    409: "Conflict",
    413: "The body is larger than the route accepts",
    415: "The body is not of the media type the route accepts",
    422: "The request is well formed but cannot be carried out",
    429: "A limit is reached (`details.limit` names it); see Retry-After and RateLimit",
    503: "A dependency (the database) is unavailable; retry after Retry-After seconds",
}


NOT_MODIFIED = (
    "Not Modified: the resource still has the version If-None-Match names (with Prefer: wait, "
    "after waiting that long for a change)"
)


def error_statuses(route: Route) -> list[int]:
    """The error statuses a route can answer, from its shape plus its declared extras."""
    statuses = set(route.errors)
    if route.body is not None or route.query is not None or route.headers:
        statuses.add(400)  # a request header it reads may be malformed too
    if route.authenticated:
        statuses.update((401, 503))  # the caller's users row needs the database
    if route.path_params:
        statuses.add(404)
    if route.body is not None:
        statuses.update((413, 415))
    return sorted(statuses)


def _schemas(router: Router) -> tuple[dict[tuple[type[BaseModel], str], Any], dict[str, Any]]:
    wanted: list[tuple[type[BaseModel], Any]] = [(ErrorBody, "serialization")]
    for route in router.routes:
        if route.body is not None:
            wanted.append((route.body, "validation"))
        if isinstance(route.response, type) and issubclass(route.response, BaseModel):
            wanted.append((route.response, "serialization"))
    wanted += [(webhook.body, "serialization") for webhook in router.webhooks]
    unique = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(unique, ref_template=REF)
    return refs, top.get("$defs", {})


def _parameters(route: Route) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name in route.path_params:
        schema = {"type": "string", "format": "uuid"} if is_uuid_param(name) else {"type": "string"}
        found.append({"name": name, "in": "path", "required": True, "schema": schema})
    if route.query is not None:
        properties = route.query.model_json_schema()["properties"]
        for name, field in route.query.model_fields.items():
            schema = dict(properties[name])
            description = schema.pop("description", None)
            schema.pop("title", None)
            parameter = {"name": name, "in": "query", "required": field.is_required()}
            if description:
                parameter["description"] = description
            found.append({**parameter, "schema": schema})
    for header in route.headers:
        schema = {"type": "string", "minLength": 1, "maxLength": header.max_length}
        found.append(
            {"name": header.name, "in": "header", "required": False, "schema": schema}
            | {"description": header.description}
        )
    return found


def _json(ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def _operation(route: Route, refs: dict[tuple[type[BaseModel], str], Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary or (route.handler.__doc__ or "").strip().split("\n")[0],
        "tags": list(route.tags),
        "security": [{"bearerAuth": []}] if route.authenticated else [],
    }
    parameters = _parameters(route)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": route.body_required,
            "content": {route.body_media_type: {"schema": refs[(route.body, "validation")]}},
        }
    success: dict[str, Any] = {"description": HTTPStatus(route.status).phrase}
    if isinstance(route.response, type) and issubclass(route.response, BaseModel):
        success["content"] = _json(refs[(route.response, "serialization")])
    headers = {
        h.name: {
            "schema": {"type": "string", "maxLength": h.max_length},
            "description": h.description,
        }
        for h in route.response_headers
    }
    limits = {  # sent with every 2xx and 429 of a route that counts against a limit
        h.name: {
            "required": True,
            "schema": {"type": "string", "maxLength": h.max_length},
            "description": h.description,
        }
        for h in route.limit_headers
    }
    if headers or limits:
        success["headers"] = {**headers, **limits}
    responses: dict[str, Any] = {str(route.status): success}
    for status in route.also:
        if status == 304:
            responses["304"] = {"description": NOT_MODIFIED, "headers": headers}
        else:
            responses[str(status)] = {**success, "description": HTTPStatus(status).phrase}
    error_ref = refs[(ErrorBody, "serialization")]
    for status in error_statuses(route):
        response: dict[str, Any] = {"description": ERROR_TEXT[status], "content": _json(error_ref)}
        if status == 429:
            response["headers"] = {"Retry-After": {**RETRY_AFTER, "required": True}, **limits}
        elif status == 503:
            response["headers"] = {"Retry-After": RETRY_AFTER}
        responses[str(status)] = response
    operation["responses"] = responses
    return operation


def _webhook(webhook: Webhook, refs: dict[tuple[type[BaseModel], str], Any]) -> dict[str, Any]:
    """The POST the system sends: its headers (all sent), body and what the answers mean."""
    return {
        "post": {
            "operationId": webhook.operation_id,
            "summary": webhook.summary,
            "description": webhook.description,
            "parameters": [
                {
                    "name": header.name,
                    "in": "header",
                    "required": True,
                    "description": header.description,
                    "schema": {"type": "string", "maxLength": header.max_length},
                }
                for header in webhook.headers
            ],
            "requestBody": {
                "required": True,
                "content": _json(refs[(webhook.body, "serialization")]),
            },
            "responses": {
                status: {"description": meaning} for status, meaning in webhook.responses.items()
            },
        }
    }


def document(router: Router) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document for a route table."""
    refs, schemas = _schemas(router)
    paths: dict[str, dict[str, Any]] = {}
    for route in router.routes:
        paths.setdefault(route.template, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Image generation API",
            "version": "1.0.0",
            "description": (
                "The frontend contract of the `api` function. Errors are "
                '`{"error": {"code", "message", "details"}}`; lists are newest first with '
                "`?limit=&cursor=` in and `{items, next_cursor}` out. Generated from the route "
                "table by tools/openapi.py."
            ),
        },
        "paths": paths,
        "webhooks": {w.name: _webhook(w, refs) for w in router.webhooks},
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Firebase Auth / Identity Platform ID token (RS256).",
                }
            },
        },
    }


def render(router: Router) -> str:
    return json.dumps(document(router), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the document is stale")
    args = parser.parse_args(argv)
    from shared.routes import router

    text = render(router())
    if args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text(encoding="utf-8") != text:
            print(f"{DOCUMENT} is stale: run python -m tools.openapi", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.parent.mkdir(exist_ok=True)
    DOCUMENT.write_text(text, encoding="utf-8")
    print(f"wrote {DOCUMENT} ({len(router().routes)} routes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
