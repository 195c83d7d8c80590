"""The `api` function's route table: the one place that wires each capability's routes in."""

from __future__ import annotations

import functools

from shared.gallery import routes as gallery
from shared.generation import routes as generation
from shared.limits import routes as limits
from shared.sessions import routes as sessions
from shared.uploads import routes as uploads
from shared.web import health
from shared.web.router import Router
from shared.webhooks import routes as webhooks


@functools.cache
def router() -> Router:
    """Built once per process, on the first request."""
    table = Router()
    for capability in (health, limits, sessions, gallery, uploads, generation, webhooks):
        table.include(capability.routes)
    return table
