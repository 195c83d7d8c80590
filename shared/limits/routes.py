"""GET /v1/me: the caller's user record (created on the first authenticated call) with each
limit and its current usage."""

from __future__ import annotations

import dataclasses

from shared import db
from shared.limits import service
from shared.limits.models import Me
from shared.web.request import ApiRequest
from shared.web.router import Reply, Routes

routes = Routes("users", operations="routes")


@routes.get("/v1/me", response=Me)
def me(request: ApiRequest) -> Reply:
    """The caller's user record (created on the first authenticated call), limits and usage"""
    assert request.user is not None
    with db.transaction() as conn:
        current = service.usage(conn, request.user_id)
    limits = {
        name: {**dataclasses.asdict(limit), "remaining": limit.remaining}
        for name, limit in current.items()
    }
    return Reply(200, {**request.user, "limits": limits})
