"""Typed views of the CloudEvents the event functions receive, and the one way they run.

`run` is every event entry point's body: parse (malformed = permanent), bind the log context,
call the service; a retryable error is raised again so the platform redelivers, a permanent one
is logged and acknowledged (the service has recorded it on its row), anything unknown
propagates (500, redelivered, in the end dead-lettered).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cloudevents.http import CloudEvent

from shared import log
from shared.errors import AppError, InvalidInput

T = TypeVar("T")


@dataclass(frozen=True)
class StorageObject:
    """The object of a `google.cloud.storage.object.v1.finalized` event."""

    bucket: str
    name: str
    generation: int | None
    size: int
    content_type: str | None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PubSubMessage:
    """The message of a `google.cloud.pubsub.topic.v1.messagePublished` event."""

    message_id: str
    data: dict[str, Any]
    attributes: dict[str, str] = field(default_factory=dict)


def storage_object(event: CloudEvent) -> StorageObject:
    data = event.get_data()
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("name"), str)
        or not data.get("bucket")
    ):
        raise InvalidInput("not a storage object event", code="malformed_event")
    try:
        generation = int(data["generation"]) if data.get("generation") is not None else None
        size = int(data.get("size") or 0)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            "storage event with a malformed generation or size", code="malformed_event"
        ) from exc
    metadata = data.get("metadata") or {}
    return StorageObject(
        bucket=str(data["bucket"]),
        name=data["name"],
        generation=generation,
        size=size,
        content_type=data.get("contentType"),
        metadata={str(k): str(v) for k, v in metadata.items()}
        if isinstance(metadata, dict)
        else {},
    )


def pubsub_message(event: CloudEvent) -> PubSubMessage:
    data = event.get_data()
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict):
        raise InvalidInput("not a Pub/Sub message event", code="malformed_event")
    try:
        payload = json.loads(base64.b64decode(message.get("data") or "", validate=True) or b"null")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("the message data is not base64 JSON", code="malformed_event") from exc
    if not isinstance(payload, dict):
        raise InvalidInput("the message data must be a JSON object", code="malformed_event")
    return PubSubMessage(
        message_id=str(message.get("messageId") or message.get("message_id") or event["id"]),
        data=payload,
        attributes=dict(message.get("attributes") or {}),
    )


def from_message(read: Callable[[PubSubMessage], T]) -> Callable[[CloudEvent], T]:
    """The parser of a Pub/Sub event that reads its message with `read`."""
    return lambda event: read(pubsub_message(event))


def run(
    function: str, event: CloudEvent, parse: Callable[[CloudEvent], T], handle: Callable[[T], None]
) -> None:
    """Parse and handle one event with the platform's retry semantics (see module docstring)."""
    with log.bind(function=function, event_id=event["id"]):
        log.info(
            "event received",
            action=f"{function}.received",
            type=event["type"],
            subject=event.get("subject"),
        )
        try:
            parsed = parse(event)
        except AppError as error:
            log.warning(
                f"malformed event acknowledged: {error.message}", action=f"{function}.malformed"
            )
            return
        try:
            handle(parsed)
        except AppError as error:
            if error.retryable:
                log.warning(
                    f"retryable failure: {error.message}",
                    action=f"{function}.retry",
                    code=error.code,
                )
                raise
            log.warning(
                f"permanent failure acknowledged: {error.message}",
                action=f"{function}.failed",
                code=error.code,
            )
