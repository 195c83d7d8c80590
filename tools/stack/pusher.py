"""Pub/Sub push delivery as on GCP, for the stack's Pub/Sub-triggered functions (the relay runs it).

On GCP, Eventarc gives each Pub/Sub-triggered function a push subscription, and Pub/Sub pushes
as many messages at once as the function's instances take. The official emulator pushes with
two loops per subscription, each waiting for its answer, so locally at most two messages of a
topic would be in flight: a 10-shot job would render two shots at a time. So `up` creates each
function's subscription with its ack deadline, retry and dead-letter policies but without a push
endpoint (tools/stack/pubsub.py), and a `Pusher` per function delivers it:

- it pulls up to `concurrency` messages at a time (what the function's instances serve at once:
  max_instances x concurrency) and POSTs each to the function in the push request's JSON shape,
  with `deliveryAttempt`;
- a 2xx acknowledges; anything else, or no answer within the ack deadline, hands the message
  back to the emulator with the retry policy's backoff for that attempt as its new ack deadline
  (min * 2^(n-1), capped at max): the emulator redelivers it then and, after the subscription's
  last attempt, moves it to the dead-letter topic, as on GCP (the subscription carries no retry
  policy of its own: see tools/stack/pubsub.py);
- nothing is pulled for a function whose port refuses connections (stopped, restarting, under a
  debugger) until its port answers again, so its messages wait instead of using up their
  attempts (only those in flight or in the pull under way when it went down use one).
  This is the local form of Pub/Sub's push flow control, which slows pushes to an endpoint that
  does not answer with successes; on GCP a crashed instance is replaced, not left unreachable.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from shared import log
from tools.stack.procs import port_answers

# A pull waits this long for messages before asking again. Short, because a pull still waiting
# when its process dies keeps taking messages (until its deadline), which then come back only
# after their ack deadline.
PULL_WAIT_SECONDS = 2.0
# How often the port of a function that is down is tried.
PORT_PROBE_SECONDS = 0.2


@dataclass(frozen=True)
class PushTarget:
    """A function's subscription and where its messages go."""

    function: str
    subscription: str  # projects/P/subscriptions/S
    url: str
    concurrency: int
    ack_deadline: float
    backoff: tuple[float, float]


def push_body(received: Any, subscription: str) -> dict[str, Any]:
    """The JSON body Pub/Sub POSTs to a push endpoint."""
    message = received.message
    published = message.publish_time.rfc3339()
    body: dict[str, Any] = {
        "message": {
            "data": base64.b64encode(message.data).decode(),
            "attributes": dict(message.attributes),
            "messageId": message.message_id,
            "message_id": message.message_id,
            "publishTime": published,
            "publish_time": published,
        },
        "subscription": subscription,
    }
    if received.delivery_attempt:
        body["deliveryAttempt"] = received.delivery_attempt
    return body


def retry_delay(backoff: tuple[float, float], attempt: int) -> float:
    low, high = backoff
    return float(min(low * 2 ** (max(attempt, 1) - 1), high))


class Pusher:
    """Delivers one subscription's messages to one function, up to `concurrency` at once."""

    def __init__(self, target: PushTarget, subscriber: pubsub_v1.SubscriberClient) -> None:
        self.target = target
        self.subscriber = subscriber
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=target.concurrency)
        self.http.mount("http://", adapter)
        self.pool = ThreadPoolExecutor(target.concurrency, thread_name_prefix=target.function)
        self.changed = threading.Condition()
        self.in_flight = 0
        address = urlsplit(target.url)
        self.port = (address.hostname or "127.0.0.1", address.port or 80)

    def run(self, stopping: threading.Event) -> None:
        """Pull and deliver until `stopping` is set."""
        while not stopping.is_set():
            with self.changed:
                while self.in_flight >= self.target.concurrency and not stopping.is_set():
                    self.changed.wait(0.5)
                free = self.target.concurrency - self.in_flight
            if not self._answers():  # pull nothing for a function that is down
                self._wait_for_port(stopping)
                continue
            for received in self._pull(free, stopping):
                with self.changed:
                    self.in_flight += 1
                self.pool.submit(self._deliver, received)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _answers(self) -> bool:
        host, port = self.port
        return port_answers(port, host)

    def _wait_for_port(self, stopping: threading.Event) -> None:
        """Return once the function's port accepts connections again (or when stopping)."""
        log.warning(
            "function unreachable: pushes paused",
            action="push.paused",
            function=self.target.function,
        )
        while not stopping.wait(PORT_PROBE_SECONDS) and not self._answers():
            pass
        log.info(
            "function answers: pushes resumed", action="push.resumed", function=self.target.function
        )

    def _pull(self, count: int, stopping: threading.Event) -> list[Any]:
        try:
            answer = self.subscriber.pull(
                subscription=self.target.subscription,
                max_messages=count,
                timeout=PULL_WAIT_SECONDS,
            )
        except gexc.DeadlineExceeded:
            return []  # nothing arrived meanwhile
        except gexc.NotFound:  # `up` creates the subscriptions once every service answers
            stopping.wait(0.2)
            return []
        except gexc.GoogleAPICallError as exc:
            log.warning(
                f"pull failed: {exc}", action="push.pull_failed", function=self.target.function
            )
            stopping.wait(1.0)
            return []
        return list(answer.received_messages)

    def _deliver(self, received: Any) -> None:
        target = self.target
        attempt = received.delivery_attempt or 1
        try:
            response = self.http.post(
                target.url,
                json=push_body(received, target.subscription),
                timeout=target.ack_deadline,
            )
            status: int | str = response.status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        ok = isinstance(status, int) and 200 <= status < 300
        fields = {
            "function": target.function,
            "message_id": received.message.message_id,
            "attempt": attempt,
            "status": status,
        }
        try:
            if ok:
                self.subscriber.acknowledge(
                    subscription=target.subscription, ack_ids=[received.ack_id]
                )
            else:
                delay = retry_delay(target.backoff, attempt)
                log.warning(
                    "push refused, will retry", action="push.retry", retry_in=delay, **fields
                )
                self.subscriber.modify_ack_deadline(
                    subscription=target.subscription,
                    ack_ids=[received.ack_id],
                    ack_deadline_seconds=round(delay),
                )
        except gexc.GoogleAPICallError as exc:  # the ack deadline lapses: it comes back anyway
            log.warning(f"ack failed: {exc}", action="push.ack_failed", **fields)
        finally:
            with self.changed:
                self.in_flight -= 1
                self.changed.notify()


def start(targets: list[PushTarget], stopping: threading.Event) -> Callable[[], None]:
    """One pusher thread per target, sharing one subscriber client; returns the stop function,
    which waits for the pending pulls to end (so none is left behind to take messages)."""
    subscriber = pubsub_v1.SubscriberClient()
    threads = []
    for target in targets:
        pusher = Pusher(target, subscriber)
        thread = threading.Thread(
            target=pusher.run, args=(stopping,), daemon=True, name=f"push-{target.function}"
        )
        thread.start()
        threads.append(thread)

    def stop() -> None:
        stopping.set()
        for thread in threads:
            thread.join(timeout=PULL_WAIT_SECONDS + 1)
        subscriber.close()

    return stop
