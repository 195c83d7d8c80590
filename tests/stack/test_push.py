"""The relay's Pub/Sub push (tools/stack/pusher.py) against the real emulator, on a subscription
made as `up` makes the functions' (tools/stack/pubsub.py): many messages in flight at once, the
push body's shape, refusals retried with the next delivery attempt after the retry policy's
backoff, dead-lettering after the last attempt, and a function that is down keeping its
messages until it answers again."""

from __future__ import annotations

import base64
import dataclasses
import itertools
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
from tools.fixtures.processes import wait_for
from tools.stack import pubsub
from tools.stack.pusher import Pusher, PushTarget, retry_delay

pytestmark = pytest.mark.stack
HOLD_SECONDS = 0.5


class Endpoint:
    """A push endpoint that holds each request a moment, records it, and refuses on demand."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # when each body came, by the monotonic clock
        self.in_flight = 0
        self.most_in_flight = 0
        self.refuse: set[str] = set()  # message data refused on every attempt
        self.refuse_once: set[str] = set()  # refused on the first attempt only
        self.port = 0
        self.start()

    def start(self) -> None:
        """Listen (again, on the same port after a stop)."""
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

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        """Close the port: connections are refused, as to a function that is down."""
        self.server.shutdown()
        self.server.server_close()

    def receive(self, body: dict[str, Any]) -> int:
        data = base64.b64decode(body["message"]["data"]).decode()
        with self.lock:
            self.bodies.append(body)
            self.arrivals.append(time.monotonic())
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(HOLD_SECONDS)
        with self.lock:
            self.in_flight -= 1
        if data in self.refuse or (data in self.refuse_once and body["deliveryAttempt"] == 1):
            return 500
        return 204

    def received(self, data: str) -> list[dict[str, Any]]:
        return [body for _, body in self.timed(data)]

    def timed(self, data: str) -> list[tuple[float, dict[str, Any]]]:
        """(arrival, body) of every push of this message data, oldest first."""
        with self.lock:
            return [
                (at, b)
                for at, b in zip(self.arrivals, self.bodies, strict=True)
                if base64.b64decode(b["message"]["data"]).decode() == data
            ]


@pytest.fixture
def wired(stack: Stack) -> Iterator[tuple[pubsub_v1.PublisherClient, str, str, Endpoint]]:
    """A topic and its subscription as `up` makes a function's (ack deadline, retry and
    dead-letter policies, 5 attempts, backoff 1-2 s), an endpoint and a pusher to it."""
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = f"push-test-{uuid.uuid4().hex[:8]}"
    function = dataclasses.replace(
        stack.spec.function("render-image"),
        name=name,
        topic=name,
        dead_letter_topic=f"{name}-dead",
        timeout_seconds=10,
        min_backoff_seconds=1,
        max_backoff_seconds=2,
    )
    topic = publisher.topic_path(stack.config.project, name)
    dead = publisher.topic_path(stack.config.project, f"{name}-dead")
    for path in (topic, dead):
        publisher.create_topic(name=path, timeout=10)
    request = pubsub.push_subscription(stack.config, function)
    subscription = str(request["name"])
    tail = subscriber.subscription_path(stack.config.project, f"{name}-dead-tail")
    subscriber.create_subscription(request={"name": tail, "topic": dead}, timeout=10)
    subscriber.create_subscription(request=request, timeout=10)
    endpoint = Endpoint()
    target = PushTarget(name, subscription, endpoint.url, 4, 10.0, stack.config.backoff(function))
    stopping = threading.Event()
    threading.Thread(target=Pusher(target, subscriber).run, args=(stopping,), daemon=True).start()
    try:
        yield publisher, topic, tail, endpoint
    finally:
        stopping.set()
        endpoint.stop()
        for path in (subscription, tail):
            subscriber.delete_subscription(subscription=path, timeout=10)
        for path in (topic, dead):
            publisher.delete_topic(topic=path, timeout=10)


def dead_lettered(tail: str, datas: set[bytes]) -> list[Any]:
    """Messages with these datas on the dead-letter tail (acknowledged once read)."""
    with pubsub_v1.SubscriberClient() as subscriber:
        answer = subscriber.pull(subscription=tail, max_messages=50, timeout=10)
        found = [m for m in answer.received_messages if m.message.data in datas]
        if found:
            subscriber.acknowledge(subscription=tail, ack_ids=[m.ack_id for m in found])
    return found


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
    assert body["subscription"].endswith(topic.rsplit("/", 1)[1] + "-push")
    assert body["deliveryAttempt"] == 1


def test_a_refused_push_comes_back_with_the_next_attempt_then_dead_letters(wired):
    publisher, topic, tail, endpoint = wired
    endpoint.refuse_once.add("flaky")
    endpoint.refuse.add("poison")
    publisher.publish(topic, b"flaky").result(timeout=10)
    publisher.publish(topic, b"poison").result(timeout=10)

    attempts = wait_for(lambda: len(endpoint.received("flaky")) == 2, 30, "the retry")
    assert attempts and [b["deliveryAttempt"] for b in endpoint.received("flaky")] == [1, 2]
    dead = wait_for(lambda: dead_lettered(tail, {b"poison"}), 60, "the dead letter")[0].message
    assert dead.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert [b["deliveryAttempt"] for b in endpoint.received("poison")] == [1, 2, 3, 4, 5]


def test_every_refused_message_comes_back_after_its_backoff_until_the_last_attempt(wired):
    """Several messages refused at once: each is pushed five times, spaced by the retry
    policy's backoff, then dead-lettered; none is lost on the way (the emulator's own retry
    policy lost them after the third attempt)."""
    publisher, topic, tail, endpoint = wired
    datas = [f"refused-{i}" for i in range(4)]
    endpoint.refuse.update(datas)
    for data in datas:
        publisher.publish(topic, data.encode()).result(timeout=10)

    dead: list[Any] = []

    def all_dead() -> bool:
        dead.extend(dead_lettered(tail, {d.encode() for d in datas}))
        return len(dead) == len(datas)

    wait_for(all_dead, 60, "every message dead-lettered")
    for data in datas:
        pushes = endpoint.timed(data)
        assert [b["deliveryAttempt"] for _, b in pushes] == [1, 2, 3, 4, 5]
        for (before, _), (after, body) in itertools.pairwise(pushes):
            backoff = retry_delay((1.0, 2.0), body["deliveryAttempt"] - 1)
            assert backoff + HOLD_SECONDS - 0.2 <= after - before <= backoff + HOLD_SECONDS + 3


def test_a_function_that_is_down_keeps_its_messages_until_it_answers_again(wired):
    """Connections refused (a function stopped, restarting, or under a debugger): the relay stops
    pushing until the port answers, so the messages wait instead of using up their attempts."""
    publisher, topic, tail, endpoint = wired
    endpoint.stop()
    datas = [f"waiting-{i}" for i in range(3)]
    for data in datas:
        publisher.publish(topic, data.encode()).result(timeout=10)
    time.sleep(10)  # longer than five attempts take with this backoff (1 + 2 + 2 + 2 s)

    endpoint.start()

    wait_for(lambda: all(endpoint.received(d) for d in datas), 30, "every message pushed")
    for data in datas:
        assert [b["deliveryAttempt"] for b in endpoint.received(data)] in ([1], [2])
    assert not dead_lettered(tail, {d.encode() for d in datas})


def test_the_retry_delay_doubles_per_attempt_up_to_the_maximum():
    assert [retry_delay((1.0, 10.0), n) for n in (0, 1, 2, 3, 4, 5)] == [1, 1, 2, 4, 8, 10]
