"""The `api` function's route table. Each resource module adds its own routes here."""

from __future__ import annotations

import functools

from shared import db, generations, reference_images
from shared.http import ApiRequest, Reply, Router


def healthz(request: ApiRequest) -> Reply:
    """Liveness answers without the database; `?ready=true` checks the database too (503 if down)."""
    if request.query("ready") not in (None, "", "false", "0"):
        with db.transaction() as conn:
            db.one(conn, "SELECT 1")
        return Reply(200, {"status": "ready", "database": "ok"})
    return Reply(200, {"status": "ok"})


def me(request: ApiRequest) -> Reply:
    """The caller's user record."""
    return Reply(200, request.user)


@functools.cache
def router() -> Router:
    """Built once per process, on the first request."""
    table = Router()
    table.add("GET", "/v1/healthz", healthz, authenticated=False)
    table.add("GET", "/v1/me", me)
    reference_images.register(table)
    generations.register(table)
    return table
