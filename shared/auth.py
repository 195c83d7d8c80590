"""Bearer ID tokens (Firebase Auth / Identity Platform), verified with google-auth.

The issuer's certificates are fetched from its certificates URL and cached for as long as its
Cache-Control allows; verification (signature, expiry, audience) is google-auth's, and the
issuer and subject are checked here. The local stack's issuer serves the same format, so the
code path is the same everywhere.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import google.auth.exceptions
import requests
from google.auth import jwt
from werkzeug.wrappers import Request

from shared import config, db
from shared.errors import Transient, Unauthenticated
from shared.queries import users

_DEFAULT_CERT_TTL = 300
_CLOCK_SKEW_SECONDS = 10


class _CertificateCache:
    """The issuer's {kid: PEM} certificates, refreshed when stale or when a kid is unknown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._certs: dict[str, str] = {}
        self._expires = 0.0
        self._session: requests.Session | None = None

    def get(self, url: str, kid: str | None) -> dict[str, str]:
        with self._lock:
            if time.monotonic() >= self._expires or (kid and kid not in self._certs):
                self._refresh(url)
            return self._certs

    def _refresh(self, url: str) -> None:
        if self._session is None:
            self._session = requests.Session()
        try:
            response = self._session.get(url, timeout=5)
            response.raise_for_status()
            certs = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise Transient("the token issuer's certificates are unavailable") from exc
        found = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
        self._certs = certs
        self._expires = time.monotonic() + (int(found.group(1)) if found else _DEFAULT_CERT_TTL)


_certificates = _CertificateCache()


def verify(token: str) -> dict[str, Any]:
    """The token's claims if it is valid for this project; Unauthenticated otherwise."""
    auth = config.settings().auth
    try:
        header = jwt.decode_header(token)
    except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
        raise Unauthenticated("the bearer token is malformed") from exc
    if header.get("alg") != "RS256":
        raise Unauthenticated("the bearer token must be signed with RS256")
    certs = _certificates.get(auth.certs_url, header.get("kid"))
    try:
        claims = jwt.decode(
            token, certs=certs, audience=auth.audience, clock_skew_in_seconds=_CLOCK_SKEW_SECONDS
        )
    except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
        raise Unauthenticated(f"the bearer token is not valid: {_reason(exc)}") from exc
    if claims.get("iss") != auth.issuer:
        raise Unauthenticated("the bearer token comes from another issuer")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 1 <= len(subject) <= 128:
        raise Unauthenticated("the bearer token has no subject")
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
    with db.transaction() as conn:
        return users.get_or_create(
            conn,
            auth_subject=claims["sub"],
            email=claims.get("email"),
            display_name=claims.get("name"),
        )
