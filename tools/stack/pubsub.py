"""Pub/Sub on the emulator, wired as on GCP: topics, the functions' subscriptions, tails.

Each Pub/Sub function gets its subscription (`<function>-push`) with an ack deadline from its
timeout and its dead-letter policy. The relay pushes its messages to the function as Pub/Sub
does on GCP, many at once, and applies the function's retry policy itself
(tools/stack/pusher.py): the emulator's own push runs two deliveries at a time per
subscription, so the subscription has no push endpoint; and the emulator (0.8.20) loses
messages under a retry policy of its own (with two or more outstanding, a message handed back
a third time never comes back, nor reaches the dead-letter topic), so it has none.
Dead-letter topics and generation-events get a `<topic>-tail` pull subscription for tests and
the demo. The emulator keeps everything in memory, so `up` (re)creates all of it, idempotently,
every time.
"""

from __future__ import annotations

import contextlib
import os

from google.api_core import exceptions
from google.cloud import pubsub_v1
from google.protobuf import field_mask_pb2

from infra.manifest import Function, Manifest
from tools.stack.config import StackConfig
from tools.stack.pusher import PushTarget

TAIL_SUFFIX = "-tail"


def subscription_path(config: StackConfig, function: Function) -> str:
    return f"projects/{config.project}/subscriptions/{function.name}-push"


def ack_deadline(function: Function) -> int:
    """The push deadline: the function's timeout, within what Pub/Sub allows."""
    return min(max(function.timeout_seconds, 10), 600)


def push_subscription(config: StackConfig, function: Function) -> dict[str, object]:
    """The subscription Eventarc would make for the function, less what the relay does itself:
    the push endpoint and the retry policy (an old one of either is cleared on update)."""
    project = config.project
    subscription: dict[str, object] = {
        "name": subscription_path(config, function),
        "topic": f"projects/{project}/topics/{function.topic}",
        "push_config": {},
        "ack_deadline_seconds": ack_deadline(function),
        "retry_policy": None,
    }
    if function.dead_letter_topic:
        subscription["dead_letter_policy"] = {
            "dead_letter_topic": f"projects/{project}/topics/{function.dead_letter_topic}",
            "max_delivery_attempts": function.max_delivery_attempts,
        }
    return subscription


def push_targets(config: StackConfig, spec: Manifest) -> list[PushTarget]:
    """What the relay pushes: each Pub/Sub function's subscription, to its local port."""
    return [
        PushTarget(
            function=f.name,
            subscription=subscription_path(config, f),
            url=config.function_url(f),
            concurrency=f.requests_at_once,
            ack_deadline=ack_deadline(f),
            backoff=config.backoff(f),
        )
        for f in spec.by_trigger("pubsub")
    ]


def tail_topics(spec: Manifest) -> list[str]:
    return [*spec.dead_letter_topics, spec.topics["generation_events"]]


def ensure_resources(config: StackConfig, spec: Manifest) -> list[str]:
    """Create or update every topic and subscription; return the subscription names."""
    os.environ["PUBSUB_EMULATOR_HOST"] = config.pubsub_host
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        for topic in spec.all_topics():
            with contextlib.suppress(exceptions.AlreadyExists):
                publisher.create_topic(name=publisher.topic_path(config.project, topic), timeout=10)
        wanted = [push_subscription(config, f) for f in spec.by_trigger("pubsub")]
        wanted += [
            {
                "name": subscriber.subscription_path(config.project, topic + TAIL_SUFFIX),
                "topic": publisher.topic_path(config.project, topic),
                "ack_deadline_seconds": 30,
            }
            for topic in tail_topics(spec)
        ]
        for subscription in wanted:
            try:
                subscriber.create_subscription(request=subscription, timeout=10)
            except exceptions.AlreadyExists:
                fields = [k for k in subscription if k not in ("name", "topic")]
                mask = field_mask_pb2.FieldMask(paths=fields)
                subscriber.update_subscription(
                    request={"subscription": subscription, "update_mask": mask}, timeout=10
                )
        return [str(s["name"]) for s in wanted]
    finally:
        subscriber.close()
        publisher.transport.close()
