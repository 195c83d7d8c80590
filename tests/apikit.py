"""What the API tests share: a token issuer, a signing key and a client that drives dispatch.

The issuer is real in every way that matters: an RSA key, a self-signed certificate served as
Google's securetoken endpoint serves it ({kid: PEM}) from an HTTP server on 127.0.0.1, and
RS256 tokens minted with google-auth. Requests go through `dispatch` as werkzeug
requests, so no framework is needed.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from shared import config, db, routes, storage
from shared.errors import AppError
from shared.web import auth
from shared.web.dispatch import dispatch
from tools.stack import keys

PROJECT = "api-test-project"
ISSUER = f"https://securetoken.google.com/{PROJECT}"


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(key: rsa.RSAPrivateKey) -> str:
    return keys.self_signed_certificate_pem(_private_pem(key), "test-issuer").decode()


@dataclass
class Issuer:
    """Mints tokens; `certs_url` serves the certificates; `fetches` counts certificate reads."""

    key: rsa.RSAPrivateKey
    kid: str
    certs_url: str
    fetches: int = 0

    def token(self, subject: str, *, key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": PROJECT,
            "sub": subject,
            "iat": now,
            "exp": now + 3600,
            "email": f"{subject}@example.com",
            "name": subject,
        }
        payload.update(claims)
        signer = crypt.RSASigner.from_string(_private_pem(key or self.key), key_id=self.kid)
        return jwt.encode(signer, payload).decode()


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = uuid.uuid4().hex
    body = json.dumps({kid: _certificate(key)}).encode()
    state = Issuer(key, kid, "")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=3600")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.certs_url = f"http://127.0.0.1:{server.server_port}/certs"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway service-account key, as the local stack signs URLs with."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("signing") / "key.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "test",
                "private_key": _private_pem(key).decode(),
                "client_email": f"api@{PROJECT}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "http://127.0.0.1:9/token",
            }
        )
    )
    return path


@pytest.fixture
def api_env(
    issuer: Issuer, signing_key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Settings for the API under test: the test issuer, local URL signing, a CORS origin."""
    monkeypatch.setenv("GCP_PROJECT", PROJECT)
    monkeypatch.setenv("AUTH_ISSUER", ISSUER)
    monkeypatch.setenv("AUTH_AUDIENCE", PROJECT)
    monkeypatch.setenv("AUTH_CERTS_URL", issuer.certs_url)
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


def call(
    method: str,
    path: str,
    *,
    token: str | None = None,
    json_body: Any = None,
    data: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    content_type: str | None = None,
) -> Response:
    """One request through dispatch, as functions-framework would hand it over."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    builder = EnvironBuilder(
        method=method,
        path=path,
        headers=all_headers,
        json=json_body,
        data=data,
        content_type=content_type,
    )
    response = dispatch(routes.router(), builder.get_request(), auth.authenticate)
    conforms(method, path.split("?")[0], response)
    return response


def body(response: Response) -> Any:
    return json.loads(response.get_data()) if response.get_data() else None
