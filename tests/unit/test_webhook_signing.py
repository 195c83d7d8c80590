"""What an answer means for a webhook attempt, which messages are events, and the signature
headers as a Standard Webhooks receiver checks them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.errors import InvalidInput
from shared.events import PubSubMessage
from shared.outbound import Answer
from shared.webhooks import delivery, signing

OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"), (204, "delivered"), (299, "delivered"),
        (410, "stopped"),
        (408, "retry"), (429, "retry"), (500, "retry"), (503, "retry"),
        (301, "failed"), (302, "failed"), (400, "failed"), (401, "failed"), (404, "failed"),
        (409, "failed"), (413, "failed"),
    ],
)  # fmt: skip
def test_every_answer_has_its_outcome(status: int, outcome: str) -> None:
    assert delivery.outcome(Answer(status, None, 0.1)) == outcome


def test_no_answer_is_retried_unless_the_address_was_refused() -> None:
    assert delivery.outcome(Answer(None, "timeout", 10.0)) == "retry"
    assert delivery.outcome(Answer(None, "a private address", 0.0, refused=True)) == "failed"


@pytest.mark.parametrize(
    "data",
    [
        {"event": "started", "job_id": "not-a-uuid", "started_at": "2026-12-05T00:00:00+00:00"},
        {"event": "started", "job_id": str(uuid.uuid4())},
        {"event": "image", "job_id": str(uuid.uuid4()), "index": "2"},
        {"event": "finished", "job_id": str(uuid.uuid4()), "finished_at": "yesterday"},
        {"event": "exploded", "job_id": str(uuid.uuid4())},
    ],
)
def test_a_malformed_event_is_permanent(data: dict) -> None:
    with pytest.raises(InvalidInput):
        delivery.event_of(PubSubMessage("1", data))


def test_a_finish_message_is_a_completed_event_keyed_by_its_event_id() -> None:
    job = uuid.uuid4()
    finished = "2026-12-05T10:00:00.123456+00:00"
    message = {"job_id": str(job), "event_id": f"{job}:{finished}", "finished_at": finished}
    event = delivery.event_of(PubSubMessage("1", message))  # no "event": an older message
    assert (event.kind, event.key) == ("completed", f"completed:{job}:{finished}")


def test_the_headers_verify_with_each_secret_and_only_with_them() -> None:
    body = b'{"type": "generation.completed"}'
    msg_id = signing.webhook_id(uuid.uuid4())
    headers = signing.headers(msg_id, body, [NEW, OLD], datetime.now(UTC))
    assert headers["webhook-id"] == msg_id and msg_id.startswith("msg_")
    assert [s.split(",")[0] for s in headers["webhook-signature"].split(" ")] == ["v1", "v1"]
    for secret in (NEW, OLD):
        assert Webhook(secret).verify(body, headers) == {"type": "generation.completed"}
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW).verify(body + b" ", headers)
