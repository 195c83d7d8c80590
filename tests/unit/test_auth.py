"""Bearer ID tokens: real RS256 tokens against a real certificates endpoint (no database)."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from google.auth import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import Transient, Unauthenticated
from shared.web import auth
from tests.apikit import body, call
from tools.stack import keys

pytestmark = pytest.mark.usefixtures("no_database", "api_env")


def _segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_a_valid_token_yields_its_claims(issuer):
    claims = auth.verify(issuer.token("alice"))
    assert claims["sub"] == "alice" and claims["email"] == "alice@example.com"


def test_certificates_are_fetched_once_and_cached(issuer):
    before = issuer.fetches
    for name in ("a", "b", "c"):
        auth.verify(issuer.token(name))
    assert issuer.fetches - before == 1


def test_unknown_key_ids_refresh_at_most_every_so_often(issuer):
    auth.verify(issuer.token("warm"))
    before = issuer.fetches
    for n in range(5):
        header = _segment({"alg": "RS256", "typ": "JWT", "kid": f"rotated-{n}"})
        token = ".".join([header, *issuer.token("x").split(".")[1:]])
        with pytest.raises(Unauthenticated):
            auth.verify(token)
    assert issuer.fetches - before <= 1


def test_a_verified_token_is_not_verified_again_until_it_expires(issuer, monkeypatch):
    token = issuer.token("alice", exp=int(time.time()) + 120)
    auth.verify(token)
    checks = []
    real = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: checks.append(1) or real(*a, **k))
    assert auth.verify(token)["sub"] == "alice"
    assert checks == []  # the second call is served from the verified tokens
    later = time.time() + 120 + 11  # past expiry and the allowed clock skew
    monkeypatch.setattr(auth.time, "time", lambda: later)  # our clock, and google-auth's:
    monkeypatch.setattr(
        jwt._helpers, "utcnow", lambda: datetime.fromtimestamp(later, UTC).replace(tzinfo=None)
    )
    with pytest.raises(Unauthenticated) as caught:
        auth.verify(token)
    assert checks == [1] and "expired" in caught.value.message


def test_a_cached_token_does_not_vouch_for_a_tampered_copy(issuer):
    token = issuer.token("alice")
    auth.verify(token)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = _segment({**claims, "sub": "admin"})
    with pytest.raises(Unauthenticated):
        auth.verify(f"{header}.{forged}.{signature}")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 60, "iat": int(time.time()) - 3660}, "expired"),
        ({"aud": "another-project"}, "wrong audience"),
        ({"iss": "https://securetoken.google.com/another-project"}, "another issuer"),
        ({"sub": ""}, "no subject"),
        ({"sub": "x" * 129}, "no subject"),
        ({"sub": 42}, "no subject"),
        ({"iat": int(time.time()) + 3600}, "not valid"),
    ],
)
def test_invalid_claims_are_refused(issuer, claims, reason):
    with pytest.raises(Unauthenticated) as caught:
        auth.verify(issuer.token("mallory", **claims))
    assert reason in caught.value.message


def test_a_token_signed_by_another_key_is_forged(issuer):
    stranger = keys.new_private_key_pem()
    with pytest.raises(Unauthenticated) as caught:
        auth.verify(issuer.token("mallory", key=stranger))
    assert "bad signature" in caught.value.message


def test_a_tampered_payload_fails_the_signature(issuer):
    header, _, signature = issuer.token("alice").split(".")
    forged = _segment({"iss": "x", "aud": "y", "sub": "admin", "iat": 1, "exp": 9999999999})
    with pytest.raises(Unauthenticated):
        auth.verify(f"{header}.{forged}.{signature}")


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b.c",
        "a.b",
        "....",
        f"{_segment(['not', 'an', 'object'])}.{_segment({})}.c2ln",
        f"{_segment({'alg': 'none'})}.{_segment({'sub': 'admin'})}.",
        f"{_segment({'alg': 'HS256', 'typ': 'JWT'})}.{_segment({'sub': 'admin'})}.c2ln",
        f"{_segment({'alg': 'RS256', 'kid': ['x']})}.{_segment({'sub': 'a'})}.c2ln",
        f"{_segment({'alg': 'RS256'})}.{_segment([1])}.c2ln",
        _segment({"alg": "RS256"}) + "." + base64.b64encode(bytes([255, 254])).decode() + ".c2ln",
    ],
)
def test_malformed_tokens_are_401_not_500(token):
    response = call("GET", "/v1/me", token=token)
    assert response.status_code == 401, body(response)
    assert body(response)["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer"]
)
def test_missing_bearer_is_401(header):
    headers = {} if header is None else {"Authorization": header}
    response = call("GET", "/v1/me", headers=headers)
    assert response.status_code == 401
    assert body(response)["error"]["message"] == "send Authorization: Bearer <ID token>"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=300),
        st.lists(st.text("ABCDEFabcdef0123456789-_=", max_size=60), min_size=3, max_size=3).map(
            ".".join
        ),
    )
)
def test_random_tokens_never_crash(token):
    assert call("GET", "/v1/me", token=token).status_code == 401


def test_certificates_unavailable_is_transient(monkeypatch):
    monkeypatch.setenv("AUTH_CERTS_URL", "http://127.0.0.1:9/certs")
    auth.config.settings.cache_clear()
    auth.reset()
    token = f"{_segment({'alg': 'RS256', 'kid': 'k'})}.{_segment({})}.c2ln"
    with pytest.raises(Transient):
        auth.verify(token)
    response = call("GET", "/v1/me", token=token)
    assert response.status_code == 503 and response.headers["Retry-After"]


@pytest.fixture
def issuer_down(monkeypatch):
    """A certificates URL that answers 503 and counts the fetches."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    fetches = []

    class Down(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetches.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Down)
    Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AUTH_CERTS_URL", f"http://127.0.0.1:{server.server_port}/certs")
    auth.config.settings.cache_clear()
    auth.reset()
    try:
        yield fetches
    finally:
        server.shutdown()
        server.server_close()


def test_a_failed_certificate_fetch_is_remembered(issuer_down, monkeypatch):
    """While the issuer is down, tokens (each with a key id never seen) fail fast as Transient
    instead of each fetching again, in turn, under the cache's lock."""
    for n in range(5):
        token = f"{_segment({'alg': 'RS256', 'kid': f'k{n}'})}.{_segment({})}.c2ln"
        with pytest.raises(Transient):
            auth.verify(token)
    assert len(issuer_down) == 1
    monkeypatch.setattr(auth, "_RETRY_AFTER_FAILURE_SECONDS", 0.05)
    time.sleep(0.1)
    with pytest.raises(Transient):
        auth.verify(f"{_segment({'alg': 'RS256', 'kid': 'later'})}.{_segment({})}.c2ln")
    assert len(issuer_down) == 2  # tried again once the pause has passed
