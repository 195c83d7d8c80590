"""Bearer ID tokens (Firebase Auth / Identity Platform), verified with google-auth.

The issuer's certificates are fetched from its certificates URL and cached for as long as its
Cache-Control allows (a token with an unknown key id refreshes them, at most every
`_MIN_REFRESH_SECONDS`); verification (signature, expiry, audience) is google-auth's, and the
issuer and subject are checked here. The local stack's issuer serves the same format, so the
code path is the same everywhere. A verified token is remembered until it expires, so the
requests that follow with the same token skip the signature check. The caller's users row is
created on first sight and then remembered per process for `_USER_TTL_SECONDS`, so a request
costs no extra database round trip. (GET /v1/me, that row with its limits: shared/limits/.)
google-auth and requests load with the first verification: health checks and preflights
never need them.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request

from shared import config, db
from shared.errors import Transient, Unauthenticated
from shared.queries import users

if TYPE_CHECKING:
    import requests

_DEFAULT_CERT_TTL = 300
_MIN_REFRESH_SECONDS = 30
_RETRY_AFTER_FAILURE_SECONDS = 5
_CLOCK_SKEW_SECONDS = 10
_USER_TTL_SECONDS = 300
_CACHE_SIZE = 10_000


class _CertificateCache:
    """The issuer's {kid: PEM} certificates, refreshed when stale or when a kid is unknown.

    A failed fetch is remembered: for `_RETRY_AFTER_FAILURE_SECONDS` the requests that would
    fetch again fail at once as Transient, instead of each waiting, in turn under the lock, for
    an issuer that is down.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._certs: dict[str, str] = {}
        self._url = ""
        self._expires = 0.0
        self._fetched = self._failed = -float("inf")

    def get(self, url: str, kid: str | None) -> dict[str, str]:
        with self._lock:
            if url != self._url:
                self._reset(url)
            now = time.monotonic()
            unknown = bool(kid) and kid not in self._certs
            if now >= self._expires or (unknown and now - self._fetched >= _MIN_REFRESH_SECONDS):
                if now - self._failed < _RETRY_AFTER_FAILURE_SECONDS:
                    raise Transient("the token issuer's certificates are unavailable")
                try:
                    self._refresh(url)
                except Transient:
                    self._failed = now
                    raise
            return self._certs

    def clear(self) -> None:
        with self._lock:
            self._reset("")

    def _reset(self, url: str) -> None:
        self._certs, self._url, self._expires = {}, url, 0.0
        self._fetched = self._failed = -float("inf")

    def _refresh(self, url: str) -> None:
        import requests

        if self._session is None:
            self._session = requests.Session()
        try:
            response = self._session.get(url, timeout=5)
            response.raise_for_status()
            certs = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise Transient("the token issuer's certificates are unavailable") from exc
        if not isinstance(certs, dict):
            raise Transient("the token issuer's certificates are malformed")
        found = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
        self._certs, self._url = certs, url
        self._fetched = time.monotonic()
        self._expires = self._fetched + (int(found.group(1)) if found else _DEFAULT_CERT_TTL)


class _Expiring:
    """A thread-safe {key: value} whose entries lapse at their own deadline on `clock`; emptied
    when full (simpler than LRU, and a refill costs one verification or query per entry)."""

    def __init__(self, clock: Callable[[], float], size: int = _CACHE_SIZE) -> None:
        self._clock = clock
        self._size = size
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Any, float]] = {}

    def get(self, key: str) -> Any:
        with self._lock:
            hit = self._entries.get(key)
        return hit[0] if hit and hit[1] > self._clock() else None

    def put(self, key: str, value: Any, until: float) -> None:
        with self._lock:
            if len(self._entries) >= self._size:
                self._entries.clear()
            self._entries[key] = (value, until)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@functools.cache
def _malformed() -> tuple[type[Exception], ...]:
    """What google-auth raises for tokens that are not JWTs at all (bad base64, a JSON list
    where an object belongs, claims of the wrong type) as well as for invalid ones."""
    import google.auth.exceptions

    return (ValueError, TypeError, KeyError, AttributeError, google.auth.exceptions.GoogleAuthError)


_certificates = _CertificateCache()
# {subject: users row}: the row exists once created, so no round trip per request.
_users = _Expiring(lambda: time.monotonic())
# {token: claims}: a browser sends the same ID token with every request for up to an hour; the
# signature check (and parsing the certificate) is done once, expiry is still checked each time.
_verified = _Expiring(lambda: time.time())


def reset() -> None:
    """Forget cached certificates and users (tests that change the issuer or the database)."""
    _certificates.clear()
    _users.clear()
    _verified.clear()


def verify(token: str) -> dict[str, Any]:
    """The token's claims if it is valid for this project; Unauthenticated otherwise."""
    known = _verified.get(token)
    if known is not None:
        return dict(known)
    from google.auth import jwt

    auth = config.settings().auth
    try:
        header = jwt.decode_header(token)
    except _malformed() as exc:
        raise Unauthenticated("the bearer token is malformed") from exc
    if not isinstance(header, dict) or header.get("alg") != "RS256":
        raise Unauthenticated("the bearer token must be signed with RS256")
    kid = header.get("kid")
    certs = _certificates.get(auth.certs_url, kid if isinstance(kid, str) else None)
    try:
        claims = jwt.decode(
            token, certs=certs, audience=auth.audience, clock_skew_in_seconds=_CLOCK_SKEW_SECONDS
        )
    except _malformed() as exc:
        raise Unauthenticated(f"the bearer token is not valid: {_reason(exc)}") from exc
    if claims.get("iss") != auth.issuer:
        raise Unauthenticated("the bearer token comes from another issuer")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 1 <= len(subject) <= 128:
        raise Unauthenticated("the bearer token has no subject")
    _verified.put(token, dict(claims), float(claims["exp"]) + _CLOCK_SKEW_SECONDS)
    return claims


def _reason(exc: Exception) -> str:
    text = str(exc).lower()
    if "expired" in text:
        return "expired"
    if "signature" in text or "could not verify" in text:
        return "bad signature"
    if "audience" in text:
        return "wrong audience"
    return "invalid"


def bearer_token(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send Authorization: Bearer <ID token>")
    return token.strip()


def authenticate(request: Request) -> dict[str, Any]:
    """The caller's users row, created on the first authenticated call."""
    claims = verify(bearer_token(request))
    subject = claims["sub"]
    row = _users.get(subject)
    if row is None:
        with db.transaction() as conn:
            row = users.get_or_create(
                conn,
                auth_subject=subject,
                email=_text(claims.get("email"), 320),
                display_name=_text(claims.get("name"), 200),
            )
        _users.put(subject, row, time.monotonic() + _USER_TTL_SECONDS)
    return row


def _text(value: Any, limit: int) -> str | None:
    """An optional profile claim as the users table takes it (else left out, not refused)."""
    return (
        value
        if isinstance(value, str) and 0 < len(value) <= limit and "\x00" not in value
        else None
    )
