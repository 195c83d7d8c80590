"""A webhook receiver on 127.0.0.1 for tests and the bench: it records every request and
answers as told, and verifies what it got with the `standardwebhooks` package, as a
customer's receiver would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

HANG = 0  # an answer that never comes


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.time() when it arrived

    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """Answers each POST with `answer(received)`: an HTTP status, or HANG to never answer."""

    def __init__(self, answer: Callable[[Received], int] = lambda r: 204) -> None:
        self.answer = answer
        self.received: list[Received] = []
        self.changed = threading.Condition()
        self.closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k.lower(): v for k, v in self.headers.items()}
                got = Received(headers, self.rfile.read(length), time.time())
                with receiver.changed:
                    receiver.received.append(got)
                    receiver.changed.notify_all()
                status = receiver.answer(got)
                if status == HANG:
                    receiver.closing.wait()
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 30) -> list[Received]:
        """The first `count` requests, once they have arrived (AssertionError after `timeout`)."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} of {count} webhooks in {timeout} s")
            return list(self.received)

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def verified(received: Received, *secrets: str) -> dict[str, Any]:
    """The payload, verified with each secret as a receiver holding it would."""
    payloads = [Webhook(s).verify(received.body, received.headers) for s in secrets]
    assert all(p == payloads[0] for p in payloads)
    return payloads[0]
