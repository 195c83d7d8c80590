"""The relay: what Eventarc, Pub/Sub push and Cloud Scheduler do on GCP, for the local stack.

The GCS emulator has no notifications, so the relay polls the bucket's listing (every
STACK_POLL_SECONDS) and POSTs a `google.cloud.storage.object.v1.finalized` CloudEvent to every
function with a gcs_finalize trigger, once per new object generation. A delivery that fails
(non-2xx, or the function unreachable) is retried with exponential backoff, with the same
event id, up to the function's `max_delivery_attempts` (else STACK_RELAY_MAX_ATTEMPTS); then
it is published to the function's dead-letter topic, as Eventarc's subscription does on GCP
(data: the object resource; attributes: the CloudEvent's `ce-*` headers and
CloudPubSubDeadLetterSourceDeliveryCount), or logged as given up when it has none. What was delivered is kept
in `.local/relay-state.json`, so a restarted relay sends only what is new. A pusher thread per
Pub/Sub function delivers its subscription as push does on GCP, many messages at once (see
tools/stack/pusher.py). The scheduler thread publishes the manifest's `schedules` bodies (see
tools/stack/scheduler.py).

    python -m tools.stack.relay   # the stack starts it; GET /healthz on STACK_RELAY_PORT
"""

from __future__ import annotations

import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import requests

from infra import manifest
from shared import log
from tools.stack import events, pubsub, pusher, scheduler
from tools.stack.config import HOST, StackConfig


@dataclass(frozen=True)
class Target:
    """A function the bucket's finalize events go to."""

    name: str
    url: str
    retry: bool
    timeout: float
    backoff: tuple[float, float]
    max_attempts: int
    concurrency: int
    dead_letter_topic: str | None = None


@dataclass
class Delivery:
    """One object generation on its way to one target; retries keep the event id."""

    target: Target
    resource: dict[str, Any]
    ce_id: str = field(default_factory=events.event_id)
    attempt: int = 0
    due: float = 0.0
    running: bool = False

    @property
    def generation(self) -> int:
        return int(self.resource["generation"])


class Relay:
    """Turns new objects into deliveries and runs them on a small thread pool."""

    def __init__(self, config: StackConfig, targets: list[Target]) -> None:
        self.config = config
        self.targets = targets
        self.http = requests.Session()
        workers = sum(t.concurrency for t in targets) or 1  # as many as the functions serve at once
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver")
        self.lock = threading.Lock()
        self.pending: dict[str, Delivery] = {}
        self.done: dict[str, int] = self._load()
        self.dirty = False
        self.listing_error: str | None = None

    def _load(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads(self.config.relay_state.read_text()).items()}
        except (OSError, ValueError):
            return {}

    def save(self) -> None:
        with self.lock:
            if not self.dirty:
                return
            snapshot, self.dirty = dict(self.done), False
        tmp = self.config.relay_state.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot))
        tmp.replace(self.config.relay_state)

    def list_objects(self) -> list[dict[str, Any]] | None:
        """Every object of the bucket, following page tokens when there are any."""
        url = f"{self.config.storage_host}/storage/v1/b/{quote(self.config.bucket, safe='')}/o"
        items: list[dict[str, Any]] = []
        params: dict[str, str] = {}
        try:
            while True:
                response = self.http.get(url, params=params, timeout=5)
                response.raise_for_status()
                page = response.json()
                items.extend(page.get("items") or [])
                if not page.get("nextPageToken"):
                    break
                params["pageToken"] = page["nextPageToken"]
        except (requests.RequestException, ValueError) as exc:
            if self.listing_error != str(exc):
                log.warning("listing failed", action="relay.listing_failed", error=str(exc))
            self.listing_error = str(exc)
            return None
        self.listing_error = None
        return items

    def poll(self) -> None:
        """Queue a delivery per target for each object generation not yet delivered."""
        objects = self.list_objects()
        if objects is None:
            return
        with self.lock:
            for resource in objects:
                generation = int(resource["generation"])
                for target in self.targets:
                    name = f"{target.name}\0{resource['name']}"
                    key = f"{name}\0{generation}"
                    if generation > self.done.get(name, 0) and key not in self.pending:
                        self.pending[key] = Delivery(target, resource, due=time.monotonic())
            listed = {f"{t.name}\0{o['name']}" for o in objects for t in self.targets}
            forgotten = self.done.keys() - listed
            for name in forgotten:
                del self.done[name]
            self.dirty = self.dirty or bool(forgotten)

    def dispatch(self) -> None:
        now = time.monotonic()
        with self.lock:
            for key, delivery in self.pending.items():
                if not delivery.running and delivery.due <= now:
                    delivery.running = True
                    self.pool.submit(self._deliver, key, delivery)

    def _deliver(self, key: str, d: Delivery) -> None:
        d.attempt += 1
        headers, body = events.finalized(d.resource, d.ce_id)
        fields = {
            "function": d.target.name,
            "object": d.resource["name"],
            "generation": str(d.generation),
            "event_id": d.ce_id,
            "attempt": d.attempt,
        }
        try:
            response = self.http.post(
                d.target.url, data=body, headers=headers, timeout=d.target.timeout
            )
            status: int | str = response.status_code
            ok = 200 <= response.status_code < 300
        except requests.RequestException as exc:
            status, ok = type(exc).__name__, False
        final = ok or not d.target.retry or d.attempt >= d.target.max_attempts
        if ok:
            log.info(
                "delivered",
                action="relay.delivered",
                status=status,
                headers=headers,
                data=json.loads(body),
                **fields,
            )
        elif final and d.target.dead_letter_topic:
            self._dead_letter(d, headers, body, fields)
        elif final:
            log.error("gave up", action="relay.gave_up", status=status, **fields)
        else:
            log.warning(
                "delivery failed, will retry",
                action="relay.retry",
                status=status,
                retry_in=self._delay(d),
                **fields,
            )
        with self.lock:
            d.running = False
            if final:
                name = key.rsplit("\0", 1)[0]
                self.done[name] = max(self.done.get(name, 0), d.generation)
                self.dirty = True
                del self.pending[key]
            else:
                d.due = time.monotonic() + self._delay(d)

    def _dead_letter(
        self, d: Delivery, headers: dict[str, str], body: bytes, fields: dict[str, Any]
    ) -> None:
        attributes = {k: v for k, v in headers.items() if k.startswith("ce-")}
        attributes["CloudPubSubDeadLetterSourceDeliveryCount"] = str(d.attempt)
        topic = d.target.dead_letter_topic or ""
        try:
            scheduler.publish(self.config, topic, body.decode(), attributes)
        except requests.RequestException as exc:
            log.error("dead letter lost", action="relay.gave_up", error=str(exc), **fields)
            return
        log.warning("dead-lettered", action="relay.dead_lettered", topic=topic, **fields)

    @staticmethod
    def _delay(d: Delivery) -> float:
        low, high = d.target.backoff
        return min(low * 2 ** (d.attempt - 1), high)

    def health(self) -> dict[str, int]:
        with self.lock:
            return {"pending": len(self.pending), "delivered": len(self.done)}

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            self.poll()
            self.dispatch()
            self.save()
            stopping.wait(self.config.poll_seconds)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.save()


def targets(config: StackConfig, functions: list[manifest.Function]) -> list[Target]:
    return [
        Target(
            name=f.name,
            url=config.function_url(f),
            retry=f.retry,
            timeout=f.timeout_seconds + 5.0,
            backoff=config.backoff(f),
            max_attempts=f.max_delivery_attempts or config.relay_max_attempts,
            dead_letter_topic=f.dead_letter_topic,
            concurrency=f.requests_at_once,
        )
        for f in functions
    ]


def _health_server(port: int, relay: Relay) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(relay.health()).encode()
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the stack polls it."""

    return ThreadingHTTPServer((HOST, port), Handler)


def main() -> None:
    spec = manifest.load()
    config = StackConfig.from_env(spec)
    relay = Relay(config, targets(config, spec.by_trigger("gcs_finalize")))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    server = _health_server(config.relay_port, relay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=scheduler.run, args=(config, spec, stopping), daemon=True).start()
    pushed = pubsub.push_targets(config, spec)
    stop_pushing = pusher.start(pushed, stopping)
    log.info(
        "relay started",
        action="relay.started",
        bucket=config.bucket,
        targets=[t.name for t in relay.targets],
        pushes=[t.function for t in pushed],
    )
    relay.run(stopping)
    stop_pushing()
    server.shutdown()


if __name__ == "__main__":
    main()
