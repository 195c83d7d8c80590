"""The relay's Pub/Sub push (tools/stack/pusher.py) against the real emulator: many messages in
flight at once, the push body's shape, refusals retried with the next delivery attempt, and
dead-lettering after the last attempt."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from google.cloud import pubsub_v1

from tests.stack.conftest import Stack
from tests.stack.generation_support import wait_for
from tools.stack.pusher import Pusher, PushTarget, retry_delay

pytestmark = pytest.mark.stack
HOLD_SECONDS = 0.5


class Endpoint:
    """A push endpoint that holds each request a moment, records it, and refuses on demand."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.refuse: set[str] = set()  # message data refused on every attempt
        self.refuse_once: set[str] = set()  # refused on the first attempt only
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = endpoint.receive(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/"

    def receive(self, body: dict[str, Any]) -> int:
        data = base64.b64decode(body["message"]["data"]).decode()
        with self.lock:
            self.bodies.append(body)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(HOLD_SECONDS)
        with self.lock:
            self.in_flight -= 1
        if data in self.refuse or (data in self.refuse_once and body["deliveryAttempt"] == 1):
            return 500
        return 204

    def received(self, data: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                b for b in self.bodies if base64.b64decode(b["message"]["data"]).decode() == data
            ]


@pytest.fixture
def wired(stack: Stack) -> Iterator[tuple[pubsub_v1.PublisherClient, str, str, Endpoint]]:
    """A topic, its subscription with a dead-letter policy, an endpoint and a pusher to it."""
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = f"push-test-{uuid.uuid4().hex[:8]}"
    topic = publisher.topic_path(stack.config.project, name)
    dead = publisher.topic_path(stack.config.project, f"{name}-dead")
    for path in (topic, dead):
        publisher.create_topic(name=path, timeout=10)
    subscription = subscriber.subscription_path(stack.config.project, name)
    tail = subscriber.subscription_path(stack.config.project, f"{name}-dead-tail")
    subscriber.create_subscription(request={"name": tail, "topic": dead}, timeout=10)
    subscriber.create_subscription(
        request={
            "name": subscription,
            "topic": topic,
            "ack_deadline_seconds": 10,
            "dead_letter_policy": {"dead_letter_topic": dead, "max_delivery_attempts": 5},
        },
        timeout=10,
    )
    endpoint = Endpoint()
    target = PushTarget("probe", subscription, endpoint.url, 4, 10.0, (0.0, 0.0))
    stopping = threading.Event()
    threading.Thread(target=Pusher(target, subscriber).run, args=(stopping,), daemon=True).start()
    try:
        yield publisher, topic, tail, endpoint
    finally:
        stopping.set()
        endpoint.server.shutdown()
        for path in (subscription, tail):
            subscriber.delete_subscription(subscription=path, timeout=10)
        for path in (topic, dead):
            publisher.delete_topic(topic=path, timeout=10)


def test_messages_are_pushed_as_many_at_once_as_the_function_takes(wired):
    publisher, topic, _, endpoint = wired
    datas = [f"shot-{i}" for i in range(10)]
    for data in datas:
        publisher.publish(topic, data.encode(), kind="probe").result(timeout=10)

    wait_for(lambda: all(endpoint.received(d) for d in datas), 30, "every message pushed")
    time.sleep(1)  # an unacknowledged one would come back meanwhile
    assert endpoint.most_in_flight == 4  # the target's concurrency, not the emulator's two
    assert all(len(endpoint.received(d)) == 1 for d in datas)  # each acknowledged once
    body = endpoint.received("shot-0")[0]
    assert body["message"]["attributes"] == {"kind": "probe"}
    assert body["message"]["messageId"] and body["message"]["publishTime"].endswith("Z")
    assert body["subscription"].endswith(topic.rsplit("/", 1)[1])
    assert body["deliveryAttempt"] == 1


def test_a_refused_push_comes_back_with_the_next_attempt_then_dead_letters(wired):
    publisher, topic, tail, endpoint = wired
    endpoint.refuse_once.add("flaky")
    endpoint.refuse.add("poison")
    publisher.publish(topic, b"flaky").result(timeout=10)
    publisher.publish(topic, b"poison").result(timeout=10)

    attempts = wait_for(lambda: len(endpoint.received("flaky")) == 2, 30, "the retry")
    assert attempts and [b["deliveryAttempt"] for b in endpoint.received("flaky")] == [1, 2]

    subscriber = pubsub_v1.SubscriberClient()

    def dead_lettered() -> list[Any]:
        answer = subscriber.pull(subscription=tail, max_messages=10, timeout=10)
        return [m for m in answer.received_messages if m.message.data == b"poison"]

    dead = wait_for(dead_lettered, 60, "the dead-lettered message")[0].message
    assert dead.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert [b["deliveryAttempt"] for b in endpoint.received("poison")] == [1, 2, 3, 4, 5]


def test_the_retry_delay_doubles_per_attempt_up_to_the_maximum():
    assert [retry_delay((1.0, 10.0), n) for n in (0, 1, 2, 3, 4, 5)] == [1, 1, 2, 4, 8, 10]
