"""Dispatch without a database: routing, bodies, limits, errors, CORS, response models."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from pydantic import BaseModel, Field
from werkzeug.test import EnvironBuilder

from shared import config
from shared.errors import InvalidInput
from shared.web import auth
from shared.web.dispatch import dispatch, framework_error, origin_allowed
from shared.web.models import Strict
from shared.web.pagination import PageQuery
from shared.web.request import MAX_JSON_BYTES, ApiRequest
from shared.web.router import Reply, Router
from tests.apikit import body, call

pytestmark = pytest.mark.usefixtures("no_database", "api_env")


class Echo(Strict):
    name: str
    count: int = 0
    tags: list[str] = Field(default_factory=list)


class Shown(BaseModel):
    name: str


class Maybe(Strict):
    note: str = ""


def _router() -> Router:
    router = Router()
    router.add(
        "POST",
        "/echo",
        lambda r: Reply(200, r.body(Echo).model_dump()),
        operation_id="echo",
        authenticated=False,
    )
    router.add(
        "GET",
        "/things/{thing_id}",
        lambda r: Reply(200, {"name": r.params["thing_id"], "secret": "x"}),
        operation_id="thing",
        authenticated=False,
        response=Shown,
    )
    router.add(
        "GET",
        "/broken",
        lambda r: Reply(200, {"nom": 1}),
        operation_id="broken",
        authenticated=False,
        response=Shown,
    )
    router.add(
        "POST",
        "/maybe",
        lambda r: Reply(200, r.body(Maybe, optional=True).model_dump()),
        operation_id="maybe",
        authenticated=False,
    )
    router.add("GET", "/crash", lambda r: 1 / 0, operation_id="crash", authenticated=False)  # type: ignore[arg-type,return-value]
    return router


def send(method: str, path: str, **kwargs):
    request = EnvironBuilder(method=method, path=path, **kwargs).get_request()
    return dispatch(_router(), request, auth.authenticate)


def _error(response) -> dict:
    assert response.mimetype == "application/json"
    payload = json.loads(response.get_data())
    assert set(payload) == {"error"} and {"code", "message"} <= set(payload["error"])
    assert "Traceback" not in response.get_data(as_text=True)
    return payload["error"]


def test_a_valid_body_round_trips_with_unicode():
    sent = {"name": "Ångström 🦊 שלום ' OR 1=1; --", "count": 3, "tags": ["<script>"]}
    response = send("POST", "/echo", json=sent)
    assert response.status_code == 200
    assert json.loads(response.get_data()) == sent


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "malformed_json"),
        ({"data": "[1, 2]", "content_type": "application/json"}, 400, "malformed_json"),
        ({"data": "", "content_type": "application/json"}, 400, "malformed_json"),
        ({"data": b"\xff\xfe{}", "content_type": "application/json"}, 400, "malformed_json"),
        ({"data": "[" * 5000 + "]" * 5000, "content_type": "application/json"}, 400, "malformed_json"),
        ({"data": '{"name": "x"}', "content_type": "text/plain"}, 415, "unsupported_media_type"),
        ({"data": "name=x", "content_type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        ({"json": {"name": "x" * (MAX_JSON_BYTES + 1)}}, 413, "payload_too_large"),
        ({"json": {"name": 5}}, 400, "invalid_input"),
        ({"json": {"name": "x", "count": "5"}}, 400, "invalid_input"),
        ({"json": {"name": "x", "count": True}}, 400, "invalid_input"),
        ({"json": {"name": "x", "count": 1.5}}, 400, "invalid_input"),
        ({"data": '{"name": "x", "count": NaN}', "content_type": "application/json"}, 400, "malformed_json"),
        ({"data": '{"name": "x", "count": Infinity}', "content_type": "application/json"}, 400, "malformed_json"),
        ({"json": {"name": "x", "extra": 1}}, 400, "invalid_input"),
        ({"json": {}}, 400, "invalid_input"),
        ({"data": '{"name": "a\\u0000b"}', "content_type": "application/json"}, 400, "invalid_input"),
        ({"data": '{"name": "\\ud800"}', "content_type": "application/json"}, 400, "invalid_input"),
        ({"data": '{"name": "x", "tags": ["\\udfff"]}', "content_type": "application/json"}, 400, "invalid_input"),
    ],
)  # fmt: skip
def test_bad_bodies_are_json_errors(kwargs, status, code):
    response = send("POST", "/echo", **kwargs)
    assert response.status_code == status
    assert _error(response)["code"] == code


def test_an_optional_body_may_be_empty_but_not_blank():
    assert send("POST", "/maybe").status_code == 200
    assert send("POST", "/maybe", data="", content_type="application/json").status_code == 200
    blank = send("POST", "/maybe", data="\r\n ", content_type="application/json")
    assert blank.status_code == 400 and _error(blank)["code"] == "malformed_json"


def test_integral_numbers_are_integers_as_json_schema_counts_them():
    response = send(
        "POST", "/echo", data='{"name": "x", "count": 3.0}', content_type="application/json"
    )
    assert json.loads(response.get_data())["count"] == 3


def test_field_errors_name_the_field():
    error = _error(send("POST", "/echo", json={"name": "x", "count": "5"}))
    assert error["details"] == [{"field": "count", "problem": "Input should be a valid integer"}]


def test_a_chunked_body_over_the_limit_is_refused():
    oversize = b'{"name": "' + b"x" * (2 * MAX_JSON_BYTES) + b'"}'
    request = EnvironBuilder(
        method="POST",
        path="/echo",
        input_stream=io.BytesIO(oversize),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_base={"wsgi.input_terminated": True},
    ).get_request()
    response = dispatch(_router(), request, auth.authenticate)
    assert response.status_code == 413


def test_unknown_route_and_wrong_method():
    assert _error(send("GET", "/nowhere"))["code"] == "not_found"
    response = send("DELETE", "/echo")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert _error(response)["code"] == "method_not_allowed"


def test_a_malformed_uuid_in_the_path_names_nothing():
    assert send("GET", "/things/not-a-uuid").status_code == 404
    assert send("GET", "/things/1' OR '1'='1").status_code == 404


def test_responses_go_through_their_model():
    ok = send("GET", "/things/6F9619FF-8B86-D011-B42D-00C04FC964FF")
    assert json.loads(ok.get_data()) == {"name": "6f9619ff-8b86-d011-b42d-00c04fc964ff"}
    broken = send("GET", "/broken")  # a body its model refuses is a bug: 500, nothing leaks
    assert broken.status_code == 500 and _error(broken)["code"] == "internal"


def test_an_unexpected_exception_is_a_generic_500(capsys):
    response = send("GET", "/crash")
    assert response.status_code == 500
    assert _error(response) == {"code": "internal", "message": "internal error"}
    assert "ZeroDivisionError" in capsys.readouterr().out  # logged, not shown


def test_cors_preflight_and_headers_for_configured_origins_only():
    allowed = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "PATCH"}
    preflight = call("OPTIONS", "/v1/sessions/x", headers=allowed)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    for waiting in ("Prefer", "If-None-Match"):  # a browser's blocking read asks for both
        assert waiting in preflight.headers["Access-Control-Allow-Headers"]
    for shown in ("ETag", "Preference-Applied"):  # ... and reads these
        assert shown in preflight.headers["Access-Control-Expose-Headers"]
    other = call("OPTIONS", "/v1/sessions", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers
    denied = call("GET", "/v1/me", headers={"Origin": "https://app.example.com"})
    assert denied.status_code == 401  # errors carry CORS headers, so the browser can read them
    assert denied.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


def _cors_warnings(capsys) -> list[dict]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [line for line in lines if line.get("action") == "api.cors_any_origin"]


def _requests_from(origin: str) -> None:
    call(
        "OPTIONS",
        "/v1/sessions",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    call("GET", "/v1/me", headers={"Origin": origin})
    call("GET", "/v1/me")


def test_a_configuration_letting_every_origin_in_is_logged_once_as_a_warning(capsys, monkeypatch):
    app = f"https://{uuid.uuid4().hex}.example.com"  # a configuration this process has not seen
    monkeypatch.setenv("CORS_ORIGINS", f"{app},*")
    config.settings.cache_clear()

    _requests_from("https://anyone.example.com")
    _requests_from(app)

    (warning,) = _cors_warnings(capsys)
    assert warning["severity"] == "WARNING" and warning["function"] == "api"
    assert warning["cors_origins"] == [app, "*"]
    assert "every origin" in warning["message"]


def test_exact_origins_log_no_warning(capsys, monkeypatch):
    app = f"https://{uuid.uuid4().hex}.example.com"
    monkeypatch.setenv("CORS_ORIGINS", f"{app},http://localhost:*")
    config.settings.cache_clear()

    _requests_from(app)
    _requests_from("http://localhost:5173")

    assert _cors_warnings(capsys) == []


def test_an_origin_matches_exactly_any_or_a_host_on_any_port():
    local = ("http://localhost:*", "https://app.example.com")
    assert origin_allowed("http://localhost:5173", local)
    assert origin_allowed("https://app.example.com", local)
    assert origin_allowed("https://evil.example.com", ("*",))
    for refused in (
        "http://localhost",
        "https://localhost:5173",
        "http://localhost.evil.com:5173",
        "http://127.0.0.1:5173",
        "https://app.example.com:8443",
    ):
        assert not origin_allowed(refused, local), refused


def test_liveness_needs_no_database_and_readiness_reports_it_down():
    live = call("GET", "/v1/healthz")
    assert live.status_code == 200 and body(live) == {"status": "ok", "database": None}
    ready = call("GET", "/v1/healthz?ready=true")
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "2"
    assert _error(ready)["code"] == "unavailable"
    assert call("GET", "/v1/healthz?ready=maybe").status_code == 400


@pytest.mark.parametrize("limit", ["", "0", "101", "-1", "abc", "1.5", "1e3", "\u0661", ["1", "2"]])
def test_limits_out_of_range_are_400(limit):
    request = EnvironBuilder(method="GET", path="/v1/sessions", query_string={"limit": limit})
    with pytest.raises(InvalidInput):
        ApiRequest(raw=request.get_request()).query_model(PageQuery)
    assert ApiRequest(raw=EnvironBuilder(query_string="limit=7").get_request()).query_model(
        PageQuery
    ) == PageQuery(limit=7)


def test_refusals_made_before_dispatch_are_json_too():
    from werkzeug.exceptions import NotFound as WerkzeugNotFound

    request = EnvironBuilder(path="/v1/x", headers={"Origin": "https://app.example.com"})
    response = framework_error(WerkzeugNotFound(), request.get_request())
    assert response.status_code == 404 and _error(response)["code"] == "not_found"
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


def _cursor(values) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "values",
    [
        ["2024-01-01T00:00:00+00:00", 1],
        ["2024-01-01T00:00:00+00:00", ["6f9619ff-8b86-d011-b42d-00c04fc964ff"]],
        ["2024-01-01T00:00:00+00:00", {"id": 1}],
        ["2024-01-01T00:00:00+00:00", None],
        [1, "6f9619ff-8b86-d011-b42d-00c04fc964ff"],
        [None, "6f9619ff-8b86-d011-b42d-00c04fc964ff"],
        [["2024-01-01T00:00:00+00:00"], "6f9619ff-8b86-d011-b42d-00c04fc964ff"],
        {"a": 1},
        "2024-01-01T00:00:00+00:00",
    ],
)
def test_forged_cursors_of_the_wrong_types_are_invalid_input(values):
    from shared.web import pagination

    with pytest.raises(InvalidInput) as refused:
        pagination.decode(_cursor(values))
    assert refused.value.code == "invalid_input"
    with pytest.raises(InvalidInput):
        pagination.decode_keyset(
            _cursor([*values, 1] if isinstance(values, list) else values),
            pagination.timestamp,
            pagination.row_id,
            pagination.index,
        )
