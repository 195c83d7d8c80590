"""api: the HTTP function behind every /v1 route of the frontend contract.

Idempotency: reads are naturally safe; deletes answer 404 the second time; POST /v1/generations
honours Idempotency-Key.
"""

import functions_framework
from flask import Request, Response

from shared import auth, http, routes


@functions_framework.http
def api(request: Request) -> Response:
    return http.dispatch(routes.router(), request, auth.authenticate)
