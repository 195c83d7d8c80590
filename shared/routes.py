"""The `api` function's route table. Each resource module adds its routes with one line here."""

from __future__ import annotations

import functools

from shared import api_models, db, generations, images, reference_images, sessions
from shared.http import ApiRequest, Reply, Router
from shared.queries import health


def healthz(request: ApiRequest) -> Reply:
    """Liveness answers without the database; `?ready=true` checks the database too (503 if down)."""
    if request.query_model(api_models.HealthQuery).ready:
        with db.transaction() as conn:
            health.ping(conn)
        return Reply(200, {"status": "ready", "database": "ok"})
    return Reply(200, {"status": "ok"})


def me(request: ApiRequest) -> Reply:
    """The caller's user record."""
    return Reply(200, request.user)


@functools.cache
def router() -> Router:
    """Built once per process, on the first request."""
    table = Router()
    table.add(
        "GET",
        "/v1/healthz",
        healthz,
        authenticated=False,
        query=api_models.HealthQuery,
        response=api_models.Health,
        summary="Liveness (no database); readiness with ?ready=true (503 while the database is down)",
        errors=(503,),
        tags=("health",),
    )
    table.add(
        "GET",
        "/v1/me",
        me,
        response=api_models.User,
        summary="The caller's user record (created on the first authenticated call)",
        tags=("users",),
    )
    sessions.register(table)
    images.register(table)
    reference_images.register(table)
    generations.register(table)
    return table
