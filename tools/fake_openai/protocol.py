"""What every endpoint of the fake shares: the OpenAI error body, injected HTTP faults and the
checks of a request's key, JSON body and required parameters."""

from __future__ import annotations

import json
from email.message import Message
from typing import Any

# status -> (type, code, message) of the real API's answer to that status
HTTP_FAULTS = {
    400: ("invalid_request_error", None, "Injected invalid request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}


class ApiError(Exception):
    """An error answered with the OpenAI error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.body = {
            "error": {
                "message": message,
                "type": type_,
                "param": param,
                "code": code,
                **(details or {}),
            }
        }


def http_fault(status: int, retry_after: float | None = None) -> ApiError:
    """The real API's error for ``status``, with ``retry-after`` when given."""
    type_, code, message = HTTP_FAULTS[status]
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return ApiError(status, message, type_=type_, code=code, headers=headers)


def moderation_blocked() -> ApiError:
    """The refusal of the image safety system (``image_generation_user_error``)."""
    return ApiError(
        400,
        "Your request was rejected by the safety system.",
        type_="image_generation_user_error",
        code="moderation_blocked",
        details={"moderation_details": {"moderation_stage": "input", "categories": ["other"]}},
    )


def authorize(headers: Message) -> None:
    scheme, _, key = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as error:
        raise ApiError(400, "We could not parse the JSON body of your request.") from error


def json_object(body: bytes) -> dict[str, Any]:
    params = parse_json(body)
    if not isinstance(params, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return params


def require(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ApiError(
            400,
            f"Missing required parameter: '{name}'.",
            param=name,
            code="missing_required_parameter",
        )
    return value


def refuse_streaming(params: dict[str, Any]) -> None:
    if params.get("stream") in (True, "true"):
        raise ApiError(400, "The fake does not stream.", param="stream")
