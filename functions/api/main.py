"""api: the HTTP function behind every /v1 route. Placeholder until the API issue lands."""

import functions_framework
from flask import Request

from shared import log


@functions_framework.http
def api(request: Request) -> tuple[dict, int]:
    log.info("request", action="api.request", path=request.path)
    if request.path == "/v1/healthz":
        return {"status": "ok"}, 200
    return {"error": {"code": "not_found", "message": "no such route"}}, 404
