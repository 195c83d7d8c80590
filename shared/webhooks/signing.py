"""Standard Webhooks 1.0 headers, signed with the `standardwebhooks` package.

`webhook-signature` holds one `v1,<base64 HMAC-SHA256 of id.timestamp.body>` per secret,
space-separated: after a rotation, the previous secret's too until it expires, so a receiver
that still has the old secret verifies as well as one that has the new.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from standardwebhooks.webhooks import Webhook

USER_AGENT = "ImageGen-Webhooks/1.0"


def webhook_id(message_id: uuid.UUID | str) -> str:
    """The message's `webhook-id`: the same on every attempt (the receiver's idempotency key)."""
    return f"msg_{uuid.UUID(str(message_id)).hex}"


def headers(message_id: str, body: bytes, secrets: list[str], now: datetime) -> dict[str, str]:
    """The request headers of one attempt, signed at `now` with every secret given."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(Webhook(s).sign(message_id, now, body) for s in secrets),
    }
