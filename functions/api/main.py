"""api: the HTTP function behind every /v1 route of the frontend contract.

Idempotency: reads are naturally safe; deletes answer 404 the second time; POST /v1/generations
honours Idempotency-Key.
"""

import functions_framework
from flask import Request, Response, request
from werkzeug.exceptions import HTTPException

from shared.routes import router
from shared.web import dispatch
from shared.web.auth import authenticate


@functions_framework.http
def api(req: Request) -> Response:
    return dispatch.dispatch(router(), req, authenticate)


@functions_framework.errorhandler(HTTPException)
def framework_error(error: HTTPException) -> Response:
    """The framework's own refusals (e.g. a path with a newline, which its router never
    matches) answer JSON like everything else."""
    return dispatch.framework_error(error, request)
