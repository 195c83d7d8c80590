"""The `api` function's route table: Routes by method and path template, the Replies of their
handlers, and the Webhooks the system sends (documented beside the routes).

Each `Route` also carries what the OpenAPI document says of it (tools/openapi.py reads it): its
operation id, request and query models, response model and status, extra error statuses.
Handlers read their input through `ApiRequest` (shared/web/request.py); shared/web/dispatch.py
runs them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter

from shared.errors import MethodNotAllowed, NotFound
from shared.web.headers import Header
from shared.web.request import MAX_JSON_BYTES, ApiRequest


@dataclass(frozen=True)
class Reply:
    """A handler's answer: status, a JSON-able body (dict or model) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ApiRequest], Reply]


@dataclass(frozen=True)
class Webhook:
    """A request the system sends to a URL its user names: an OpenAPI 3.1 `webhooks` entry.

    `headers` are all sent; `responses` says what the receiver's statuses mean ("2XX", "410").
    """

    name: str
    operation_id: str
    body: type[BaseModel]
    summary: str
    description: str
    headers: tuple[Header, ...]
    responses: dict[str, str]


@dataclass(frozen=True)
class Route:
    """One route, with what the OpenAPI document says of it.

    `operation_id` names the operation in the document (clients generated from it name their
    methods so: it stays when code moves to another module, as Routes' `operations` prefix is
    the capability's, not the module's); `response` is the model of a 2xx body (the body is
    serialised through it, so nothing undocumented leaves); `errors` lists statuses beyond
    those the route's shape implies; `limit_headers` (the RateLimit fields of a route that
    counts against a limit) go with its 2xx and its 429 answers.
    """

    method: str
    template: str
    handler: Handler
    operation_id: str
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
    also: tuple[int, ...] = ()  # other statuses it answers: another 2xx, or 304 Not Modified
    response_headers: tuple[Header, ...] = ()  # headers its successful answers carry
    limit_headers: tuple[Header, ...] = ()  # the RateLimit headers: on its 2xx and its 429

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
        self.webhooks: list[Webhook] = []

    def add_webhook(self, webhook: Webhook) -> None:
        """Document a request the system sends (it is no route: nothing here serves it)."""
        self.webhooks.append(webhook)

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        operation_id: str,
        authenticated: bool = True,
        **meta: Any,
    ) -> None:
        """Add a route; `meta` takes Route's documentation fields (body, response, ...)."""
        if any(r.operation_id == operation_id for r in self.routes):
            raise ValueError(f"operation id {operation_id!r} is taken")
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        pattern = re.compile(f"^{regex}$")
        self.routes.append(
            Route(method, template, handler, operation_id, authenticated, pattern, **meta)
        )

    def include(self, routes: Routes) -> None:
        """Add a capability's routes, in the order they were declared."""
        for method, template, handler, meta in routes.declared:
            self.add(method, template, handler, **meta)
        for webhook in routes.webhooks:
            self.add_webhook(webhook)

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


class Routes:
    """A capability's routes, each declared on its handler (`@routes.get(template, ...)`, and
    `post`, `patch`, `delete`) with Router.add's fields. A route's OpenAPI operation id is
    `<operations>_<handler name>` (renaming a handler renames the operation for clients: the
    committed document's test says so), its summary the first line of the handler's
    docstring, and `tags` go to every route unless one names its own. `webhooks` are the
    requests the capability sends (documented beside its routes). shared/routes.py includes
    every capability's routes in the api's Router."""

    def __init__(self, *tags: str, operations: str, webhooks: tuple[Webhook, ...] = ()) -> None:
        self.tags = tags
        self.operations = operations
        self.webhooks = webhooks
        self.declared: list[tuple[str, str, Handler, dict[str, Any]]] = []

    def get(self, template: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self._declare("GET", template, meta)

    def post(self, template: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self._declare("POST", template, meta)

    def patch(self, template: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self._declare("PATCH", template, meta)

    def delete(self, template: str, **meta: Any) -> Callable[[Handler], Handler]:
        return self._declare("DELETE", template, meta)

    def _declare(
        self, method: str, template: str, meta: dict[str, Any]
    ) -> Callable[[Handler], Handler]:
        def declare(handler: Handler) -> Handler:
            operation_id = f"{self.operations}_{handler.__name__}"
            fields = {"tags": self.tags, "operation_id": operation_id, **meta}
            self.declared.append((method, template, handler, fields))
            return handler

        return declare


def _checked_params(params: dict[str, str]) -> dict[str, str]:
    for name, value in params.items():
        if is_uuid_param(name):
            try:
                params[name] = str(uuid.UUID(value))
            except ValueError:
                raise NotFound(f"no such {name.removesuffix('_id') or 'resource'}") from None
    return params
