"""What the API tests share: a token issuer, a signing key and a client that drives dispatch.

The issuer is tools/fixtures/issuer.py's (an RSA key and its certificate served from
127.0.0.1 as Google serves them). Requests go through `dispatch` as werkzeug requests, so no
framework is needed; every answer is checked against the committed OpenAPI document.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from shared import config, db, routes, storage
from shared.config import firebase_issuer
from shared.errors import AppError
from shared.web import auth
from shared.web.dispatch import dispatch
from tools.fixtures.issuer import TokenIssuer
from tools.stack import keys

PROJECT = "api-test-project"
ISSUER = firebase_issuer(PROJECT)


@pytest.fixture(scope="session")
def issuer() -> Iterator[TokenIssuer]:
    running = TokenIssuer(PROJECT)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway service-account key, as the local stack signs URLs with."""
    return keys.ensure_signing_credentials(tmp_path_factory.mktemp("signing") / "key.json", PROJECT)


@pytest.fixture
def api_env(
    issuer: TokenIssuer, signing_key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Settings for the API under test: the test issuer, local URL signing, a CORS origin."""
    for name, value in issuer.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SIGNING_CREDENTIALS_FILE", str(signing_key_file))
    # Signing needs no network; the address only keeps the storage client off Google's.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("CORS_ORIGINS", "https://app.example.com")
    config.settings.cache_clear()
    auth.reset()
    storage.signed_urls.clear()
    yield
    config.settings.cache_clear()
    auth.reset()
    storage.signed_urls.clear()


DOCUMENT = json.loads(
    (Path(__file__).resolve().parents[1] / "openapi" / "openapi.json").read_text()
)


def conforms(method: str, path: str, response: Response) -> None:
    """Assert the response is one the OpenAPI document allows for this operation."""
    try:
        route, _ = routes.router().match(method, path)
    except AppError:
        return  # not an operation of the document (unknown route, wrong method)
    operation = DOCUMENT["paths"][route.template][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path}: undocumented {status}"
    content = operation["responses"][status].get("content")
    if content is None:
        assert not response.get_data(), f"{method} {path}: {status} should have no body"
        return
    assert response.mimetype in content
    schema = {**content[response.mimetype]["schema"], "components": DOCUMENT["components"]}
    jsonschema_rs.validate(schema, json.loads(response.get_data()))


@pytest.fixture
def no_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A configured database that is down: nothing listens on port 9."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:secret@127.0.0.1:9/imagegen")
    config.settings.cache_clear()
    db.dispose()
    yield
    db.dispose()


def _dispatch(user_of: Any, method: str, path: str, **builder: Any) -> Response:
    """One request through dispatch, as functions-framework would hand it over (`builder`:
    werkzeug's EnvironBuilder), its answer checked against the OpenAPI document."""
    request = EnvironBuilder(method=method, path=path, **builder).get_request()
    response = dispatch(routes.router(), request, user_of)
    conforms(method, path.split("?")[0], response)
    return response


def call(method: str, path: str, *, token: str | None = None, **builder: Any) -> Response:
    """One request with `token` as its bearer token (none: unauthenticated)."""
    headers = dict(builder.pop("headers", None) or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return _dispatch(auth.authenticate, method, path, headers=headers, **builder)


def call_as(
    user: dict[str, Any], method: str, path: str, json: Any = None, **builder: Any
) -> tuple[int, Any, dict[str, str]]:
    """One request as `user` (a users row: no token): (status, JSON body or None, headers)."""
    response = _dispatch(lambda _: user, method, path, json=json, **builder)
    return response.status_code, body(response), dict(response.headers)


def body(response: Response) -> Any:
    return json.loads(response.get_data()) if response.get_data() else None
