"""GET /v1/healthz: liveness without the database, readiness with it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared import db
from shared.queries import health
from shared.web.models import Model
from shared.web.request import ApiRequest
from shared.web.router import Reply, Routes

routes = Routes("health", operations="routes")


class HealthQuery(Model):
    ready: bool = Field(False, description="Also check the database (readiness).")


class Health(Model):
    status: Literal["ok", "ready"]
    database: Literal["ok"] | None = None


@routes.get("/v1/healthz", authenticated=False, query=HealthQuery, response=Health, errors=(503,))
def healthz(request: ApiRequest) -> Reply:
    """Liveness (no database); readiness with ?ready=true (503 while the database is down)"""
    if request.query_model(HealthQuery).ready:
        with db.transaction() as conn:
            health.ping(conn)
        return Reply(200, {"status": "ready", "database": "ok"})
    return Reply(200, {"status": "ok"})
