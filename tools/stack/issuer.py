"""The local token issuer: Firebase-shaped ID tokens, verified exactly as on GCP.

It serves its certificate as Google's securetoken endpoint does (`{kid: PEM certificate}` at
CONFIG.certs_url), so `google.oauth2.id_token.verify_token(token, request, audience=project,
certs_url=...)` works unchanged. Tokens are minted from the key file (`make token USER=name`)
or over HTTP: `GET /token?user=name` answers `{"token": ...}`.

    python -m tools.stack.issuer   # serve on STACK_ISSUER_PORT (the stack starts it)
"""

from __future__ import annotations

import hashlib
import json
import string
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from google.auth import crypt, jwt

from infra import manifest
from shared.config import firebase_issuer
from tools.stack.config import CERTS_PATH, HOST, StackConfig
from tools.stack.keys import IssuerKey, issuer_key

_ALPHABET = string.digits + string.ascii_letters
TOKEN_LIFETIME_SECONDS = 3600


def user_id(user: str) -> str:
    """A stable 28-character Firebase-like uid for a user name."""
    number = int.from_bytes(hashlib.sha256(f"local-user:{user}".encode()).digest(), "big")
    chars = []
    for _ in range(28):
        number, rest = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[rest])
    return "".join(chars)


def claims(user: str, project: str, now: int | None = None) -> dict[str, object]:
    """The payload Firebase Auth puts in an ID token for an email/password user."""
    now = int(time.time()) if now is None else now
    uid = user_id(user)
    email = f"{user}@example.com"
    return {
        "iss": firebase_issuer(project),
        "aud": project,
        "auth_time": now,
        "user_id": uid,
        "sub": uid,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_SECONDS,
        "email": email,
        "email_verified": True,
        "name": user,
        "firebase": {"identities": {"email": [email]}, "sign_in_provider": "password"},
    }


def mint(key: IssuerKey, user: str, project: str) -> str:
    """An RS256 ID token for `user`, signed by the issuer key."""
    signer = crypt.RSASigner.from_string(key.private_pem, key_id=key.kid)
    return jwt.encode(signer, claims(user, project)).decode()


def certificates(key: IssuerKey) -> dict[str, str]:
    """The certificates document: {kid: PEM certificate}."""
    return {key.kid: key.certificate_pem.decode()}


def serve(config: StackConfig) -> None:
    """Serve the certificates, tokens and a health check until killed."""
    key = issuer_key(config.keys)
    certs = json.dumps(certificates(key)).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == CERTS_PATH:
                self._send(200, certs, "public, max-age=3600")
            elif url.path == "/token":
                user = parse_qs(url.query).get("user", [""])[0]
                if not user:
                    self._send(400, b'{"error": "user is required"}')
                    return
                body = {"token": mint(key, user, config.project), "user_id": user_id(user)}
                self._send(200, json.dumps(body).encode())
            elif url.path == "/healthz":
                self._send(200, b'{"status": "ok"}')
            else:
                self._send(404, b'{"error": "not found"}')

        def _send(self, status: int, body: bytes, cache: str = "no-store") -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Cache-Control", cache)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            print(f"issuer: {self.address_string()} {format % args}", flush=True)

    server = ThreadingHTTPServer((HOST, config.issuer_port), Handler)
    print(f"issuer: serving {config.certs_url} (kid {key.kid})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(StackConfig.from_env(manifest.load()))
