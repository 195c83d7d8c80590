"""The local web console's own origin: web/ as static files, and sign-in as a named local user.

The console (web/: HTML, CSS and ES modules, no build step) is served apart from the api and the
bucket, as a deployed frontend would be, so each of its calls crosses origins and needs their
CORS. Besides the files, two paths exist here and only in the local stack:

- `GET /config.json`: `{"api_url": ...}`, where the page finds the api;
- `GET /local/token?user=NAME`: `{"token": ..., "user_id": ...}`, a Firebase-shaped ID token for
  a named local user, minted with the issuer's key as `make token` mints it. It stands in for
  Firebase sign-in; a deployed frontend signs in with Firebase instead.

Every answer forbids caching (an edit of web/ shows on reload) and carries a
Content-Security-Policy that lets the page reach this origin, the api and the bucket, nothing
else.

    python -m tools.stack.console   # the stack starts it on STACK_CONSOLE_PORT
"""

from __future__ import annotations

import json
import re
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra import manifest
from infra.manifest import ROOT, Manifest
from tools.stack.config import HOST, StackConfig
from tools.stack.issuer import mint, user_id
from tools.stack.keys import issuer_key

WEB = ROOT / "web"
USER_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def content_security_policy(config: StackConfig, spec: Manifest) -> str:
    """This origin for code and styles; the api and the bucket for calls; the bucket for images."""
    bucket = config.storage_host
    return "; ".join(
        [
            "default-src 'self'",
            f"connect-src 'self' {config.api_url(spec)} {bucket}",
            f"img-src 'self' {bucket}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def server(
    config: StackConfig, spec: Manifest, host: str = HOST, port: int | None = None
) -> ThreadingHTTPServer:
    """A server of web/, /config.json and /local/token on `host`:`port` (the stack's console
    port by default; 0 for any free one), not yet serving."""
    key = issuer_key(config.keys)
    settings = json.dumps({"api_url": config.api_url(spec)}).encode()
    policy = content_security_policy(config, spec)

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(WEB), **kwargs)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/config.json":
                self._json(200, settings)
            elif url.path == "/local/token":
                self._token(parse_qs(url.query).get("user", [""])[0])
            else:
                super().do_GET()

        def _token(self, user: str) -> None:
            if not USER_NAME.fullmatch(user):
                problem = "a user name is 1-64 letters, digits, '.', '_' or '-'"
                error = {"code": "invalid_user", "message": problem, "details": None}
                self._json(400, json.dumps({"error": error}).encode())
                return
            token = mint(key, user, config.project)
            self._json(200, json.dumps({"token": token, "user_id": user_id(user)}).encode())

        def _json(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def list_directory(self, path: str) -> None:  # a folder without index.html
            self.send_error(404, "no such page")

        def end_headers(self) -> None:
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", policy)
            super().end_headers()

        def log_message(self, format: str, *args: object) -> None:
            print(f"console: {self.address_string()} {format % args}", flush=True)

    return ThreadingHTTPServer((host, config.console_port if port is None else port), Handler)


if __name__ == "__main__":
    spec = manifest.load()
    config = StackConfig.from_env(spec)
    console = server(config, spec)
    print(f"console: serving {WEB} at {config.console_url}", flush=True)
    console.serve_forever()
