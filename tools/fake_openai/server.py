"""The fake's server: ``FakeOpenAI`` (routes, latency, scripted faults, recorded calls and the
control API) on a threading HTTP server. The endpoints live in chat, images and moderations."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tools.fake_openai import chat, images, moderations
from tools.fake_openai.protocol import (
    HTTP_FAULTS,
    ApiError,
    authorize,
    http_fault,
    moderation_blocked,
    parse_json,
)

MAX_BODY_BYTES = 64 * 1024 * 1024
ENDPOINTS = ("images", "chat", "moderations", "any")
Endpoint = Callable[["FakeOpenAI", Message, bytes, dict[str, Any]], dict[str, Any]]
MODEL_ROUTES: dict[tuple[str, str], Endpoint] = {
    ("POST", "/v1/chat/completions"): chat.complete,
    ("POST", "/v1/images/generations"): images.generate,
    ("POST", "/v1/images/edits"): images.edit,
    ("POST", "/v1/moderations"): moderations.moderate,
}


@dataclass
class Fault:
    """A scripted fault, answered to the next ``times`` calls of ``endpoint``."""

    endpoint: str = "any"
    status: int = 500
    times: int = 1
    kind: str = "http"
    retry_after: float | None = None
    seconds: float = 0.0

    @classmethod
    def from_json(cls, raw: object) -> Fault:
        """Validate one fault of the control API."""
        names = {field.name for field in fields(cls)}
        if not isinstance(raw, dict) or not set(raw) <= names:
            raise ValueError(f"a fault is an object with keys among {sorted(names)}: {raw!r}")
        fault = cls(**raw)
        if fault.endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}: {raw!r}")
        if fault.kind not in ("http", "moderation_blocked", "timeout"):
            raise ValueError(f"kind must be http, moderation_blocked or timeout: {raw!r}")
        if fault.kind == "timeout" and not fault.seconds:
            raise ValueError(f"a timeout needs seconds > 0: {raw!r}")
        if fault.kind == "http" and fault.status not in HTTP_FAULTS:
            raise ValueError(f"status must be one of {sorted(HTTP_FAULTS)}: {raw!r}")
        if type(fault.times) is not int or fault.times < 1:
            raise ValueError(f"times must be a positive integer: {raw!r}")
        if not all(_is_seconds(value) for value in (fault.seconds, fault.retry_after or 0)):
            raise ValueError(f"seconds and retry_after must be numbers >= 0: {raw!r}")
        return fault


class FakeOpenAI:
    """The fake on a background thread: a context manager, or ``start()`` then ``close()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, log_requests: bool = False):
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._latency = 0.0
        self._faults: list[Fault] = []
        self._records: list[dict[str, Any]] = []
        self._in_flight = self._peak_in_flight = 0
        self._server = _Server((host, port), self, log_requests)
        self._thread: threading.Thread | None = None
        # The server's root, where ``/_fake`` lives, and the ``base_url`` for the openai client.
        self.url = f"http://{self._server.server_address[0]!s}:{self._server.server_port}"
        self.base_url = f"{self.url}/v1"

    def start(self) -> FakeOpenAI:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; requests still sleeping wake up and answer 503."""
        self._closing.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def configure(self, *, latency_seconds: float) -> dict[str, float]:
        """Set the latency added to every model call."""
        if not _is_seconds(latency_seconds):
            raise ValueError(f"latency_seconds must be a number >= 0: {latency_seconds!r}")
        with self._lock:
            self._latency = float(latency_seconds)
        return {"latency_seconds": self._latency}

    def add_faults(self, faults: list[dict[str, Any]]) -> int:
        """Queue scripted faults after those pending; return how many are pending."""
        if not isinstance(faults, list):
            raise ValueError("faults are a JSON list")
        parsed = [Fault.from_json(raw) for raw in faults]
        with self._lock:
            self._faults.extend(parsed)
            return len(self._faults)

    def requests(self) -> list[dict[str, Any]]:
        """Copies of the recorded model calls, oldest first."""
        with self._lock:
            return json.loads(json.dumps(self._records))

    def stats(self) -> dict[str, int]:
        """Model calls in flight now, and the most at once since the last reset."""
        with self._lock:
            return {"in_flight": self._in_flight, "peak_in_flight": self._peak_in_flight}

    def reset(self) -> None:
        """Forget latency, pending faults, recorded requests and the peak of calls in flight."""
        with self._lock:
            self._latency = 0.0
            self._faults.clear()
            self._records.clear()
            self._peak_in_flight = self._in_flight

    # What the endpoints use.
    def note(self, record: dict[str, Any], **values: Any) -> None:
        """Add what an endpoint learnt about a call to its record."""
        with self._lock:
            record.update(values)

    def misbehave(self, endpoint: str) -> None:
        """Wait the configured latency, then apply the next scripted fault for ``endpoint``."""
        with self._lock:
            latency = self._latency
            fault = next((f for f in self._faults if f.endpoint in (endpoint, "any")), None)
            if fault is not None:
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
        self.sleep(latency)
        if fault is None:
            return
        if fault.kind == "timeout":
            self.sleep(fault.seconds)
        elif fault.kind == "moderation_blocked":
            raise moderation_blocked()
        else:
            raise http_fault(fault.status, fault.retry_after)

    def sleep(self, seconds: float) -> None:
        """Sleep, unless the fake closes meanwhile (then answer 503)."""
        if seconds > 0 and self._closing.wait(seconds):
            raise http_fault(503)

    def dispatch(
        self, method: str, path: str, headers: Message, body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one request: status, JSON body and extra headers."""
        route = (method, urlsplit(path).path)
        try:
            if route[1].startswith("/_fake/"):
                return 200, self._control(route, body), {}
            if route in MODEL_ROUTES:
                return 200, self._model_call(route, headers, body), {}
            raise ApiError(404, f"Invalid URL ({method} {route[1]})")
        except ApiError as error:
            return error.status, error.body, error.headers

    def _control(self, route: tuple[str, str], body: bytes) -> dict[str, Any]:
        try:
            match route:
                case ("GET", "/_fake/requests"):
                    return {"requests": self.requests()}
                case ("GET", "/_fake/stats"):
                    return self.stats()
                case ("POST", "/_fake/reset"):
                    self.reset()
                    return {"reset": True}
                case ("POST", "/_fake/config"):
                    return self.configure(**parse_json(body))
                case ("POST", "/_fake/faults"):
                    return {"pending": self.add_faults(parse_json(body))}
        except (TypeError, ValueError) as error:
            raise ApiError(400, str(error)) from error
        raise ApiError(404, f"Invalid URL ({route[0]} {route[1]})")

    def _model_call(self, route: tuple[str, str], headers: Message, body: bytes) -> dict[str, Any]:
        record: dict[str, Any] = {
            "method": route[0],
            "path": route[1],
            "time": time.time(),
            "headers": {k.lower(): v for k, v in headers.items() if k.lower() != "authorization"},
            "status": None,
        }
        with self._lock:
            self._records.append(record)
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            authorize(headers)
            answer = MODEL_ROUTES[route](self, headers, body, record)
        except ApiError as error:
            self.note(record, status=error.status)
            raise
        finally:
            with self._lock:
                self._in_flight -= 1
        self.note(record, status=200)
        return answer


def _is_seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: FakeOpenAI, log_requests: bool) -> None:
        self.fake = fake
        self.log_requests = log_requests
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away (a client timeout); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection frees its thread after this
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if "Transfer-Encoding" in self.headers or not length.isdigit():
            self.close_connection = True
            self._send(411, ApiError(411, "A Content-Length is required.").body, {})
            return
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, ApiError(413, "The request body is too large.").body, {})
            return
        body = self.rfile.read(int(length))
        self._send(*self.server.fake.dispatch(self.command, self.path, self.headers, body))

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description="An OpenAI-compatible fake server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with FakeOpenAI(args.host, args.port, log_requests=True) as fake:
        print(f"fake-openai ready on {fake.base_url}", flush=True)
        stop.wait()
