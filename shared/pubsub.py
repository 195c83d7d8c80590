"""Publishing JSON messages to Pub/Sub topics. One publisher client per process, made on the
first publish, and the client library (with grpc) loaded then: most requests never publish.

Every message carries non-empty JSON data (a push body without data is refused by
functions-framework and would be redelivered forever). Publishing waits for the server's
acknowledgement with a timeout; a failure is Transient so the caller can retry or re-drive.
"""

from __future__ import annotations

import json
import threading
from concurrent import futures
from typing import TYPE_CHECKING, Any

from shared import config
from shared.errors import Transient

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient

_lock = threading.Lock()
_publisher: PublisherClient | None = None

PUBLISH_TIMEOUT_SECONDS = 10.0


def publisher() -> PublisherClient:
    global _publisher
    if _publisher is None:
        with _lock:
            if _publisher is None:
                from google.cloud.pubsub_v1 import PublisherClient

                _publisher = PublisherClient()
    return _publisher


def reset() -> None:
    """Forget the publisher: the next publish makes one for the current environment (tests)."""
    global _publisher
    with _lock:
        _publisher = None


def topic_path(topic: str) -> str:
    return publisher().topic_path(config.settings().project, topic)


def publish_many(topic: str, payloads: list[dict[str, Any]], **attributes: str) -> list[str]:
    """Publish every payload, then wait for all of them; returns the message ids in order."""
    from google.api_core import exceptions as gexc

    path = topic_path(topic)
    pending = [
        publisher().publish(
            path, json.dumps(p, separators=(",", ":"), default=str).encode(), **attributes
        )
        for p in payloads
    ]
    try:
        return [f.result(timeout=PUBLISH_TIMEOUT_SECONDS) for f in pending]
    except (gexc.GoogleAPIError, futures.TimeoutError, TimeoutError) as exc:
        raise Transient(f"publishing to {topic} failed: {type(exc).__name__}") from exc


def publish(topic: str, payload: dict[str, Any], **attributes: str) -> str:
    return publish_many(topic, [payload], **attributes)[0]
