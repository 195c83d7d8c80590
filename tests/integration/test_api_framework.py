"""Hostile bodies against the `api` function as it runs: under functions-framework (gunicorn,
Flask and the framework's own after-request hook, which reads the whole body after every
response), on a real PostgreSQL, with real tokens. Requests go over raw sockets, so bodies can
be oversized, chunked or malformed. Every answer is a JSON error, and nothing is logged at
ERROR."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.fixtures.issuer import TokenIssuer

MIB = 1024 * 1024


@dataclass
class Api:
    port: int
    log: Path

    def exchange(self, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """Send the request (the body from a thread, as a client that does not wait to be
        read would) and read the answer."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        try:
            sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")

            def send() -> None:
                with contextlib.suppress(OSError):  # answered and closed before the end
                    sock.sendall(body)

            sender = threading.Thread(target=send)
            sender.start()
            response = http.client.HTTPResponse(sock)
            response.begin()
            data = response.read()
            sender.join(timeout=30)
            return response.status, dict(response.getheaders()), data
        finally:
            sock.close()

    def request(
        self, method: str, path: str, token: str | None, body: bytes, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {path} HTTP/1.1", "Host: api", "Connection: close"]
        if token:
            lines.append(f"Authorization: Bearer {token}")
        if "Transfer-Encoding" not in headers:
            headers["Content-Length"] = str(len(body))
        lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        return self.exchange("\n".join(lines) + "\n", body)


@pytest.fixture
def api(database, issuer, signing_key_file, functions, tmp_path) -> Api:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DATABASE_URL": database,
        **issuer.env(),
        "SIGNING_CREDENTIALS_FILE": str(signing_key_file),
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
    }
    running = functions("functions/api/main.py", "api", env)
    return Api(running.port, tmp_path / "api.log")


def _error(answer: tuple[int, dict[str, str], bytes]) -> tuple[int, str]:
    status, headers, data = answer
    assert headers.get("Content-Type") == "application/json", (status, data[:300])
    return status, json.loads(data)["error"]["code"]


def _json(size: int) -> bytes:
    return json.dumps({"title": "x" * size}).encode()


def _chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def test_oversized_and_malformed_bodies_are_json_errors_and_nothing_is_logged_at_error(
    api: Api,
    issuer: TokenIssuer,
) -> None:
    token = issuer.token(f"hostile-{uuid.uuid4().hex[:6]}")
    status, _, made = api.request(
        "POST", "/v1/sessions", token, b'{"title": "t"}', Content_Type="application/json"
    )
    assert status == 201
    session = f"/v1/sessions/{json.loads(made)['id']}"
    boundary = "b" * 16
    multipart = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + b"\0" * (21 * MIB)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    json_type = {"Content_Type": "application/json"}
    chunked = {**json_type, "Transfer-Encoding": "chunked"}
    cases = [
        ("POST", "/v1/sessions", token, _json(70 * 1024), json_type, (413, "payload_too_large")),
        ("POST", "/v1/sessions", token, _json(20 * MIB), json_type, (413, "payload_too_large")),
        ("PATCH", session, token, _json(100 * 1024), json_type, (413, "payload_too_large")),
        (
            "POST",
            "/v1/uploads",
            token,
            multipart,
            {"Content_Type": f"multipart/form-data; boundary={boundary}"},
            (413, "payload_too_large"),
        ),
        (
            "POST",
            "/v1/sessions",
            token,
            _chunked(*[b"x" * 8192] * 10),
            chunked,
            (413, "payload_too_large"),
        ),
        (
            "POST",
            "/v1/sessions",
            token,
            b"zz\r\nabc\r\n0\r\n\r\n",
            chunked,
            (400, "malformed_body"),
        ),
        ("POST", "/v1/sessions", None, _json(70 * 1024), json_type, (401, "unauthenticated")),
        (
            "POST",
            "/v1/sessions",
            None,
            b"zz\r\nabc\r\n0\r\n\r\n",
            chunked,
            (401, "unauthenticated"),
        ),
        ("POST", "/v1/nowhere", None, _json(20 * MIB), json_type, (404, "not_found")),
    ]
    for method, path, bearer, body, headers, expected in cases:
        answer = api.request(method, path, bearer, body, **headers)
        assert _error(answer) == expected, (method, path, len(body), headers)
    # The process is still serving, and its log has no ERROR line and no stack trace.
    assert api.request("GET", "/v1/healthz", None, b"")[0] == 200
    logged = api.log.read_text()
    assert "Traceback" not in logged and "ERROR" not in logged, logged[-3000:]
