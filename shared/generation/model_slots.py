"""The image model's limits, shared by every instance through PostgreSQL.

OpenAI limits an organisation's images per minute, and a thousand shots in flight calling at
once would meet a storm of 429s. So a render takes a model slot in the transaction that claims
its shot (`admit`): under a lock per organisation, one conditional INSERT into `model_calls`
admits the call only while fewer than OPENAI_CONCURRENT_IMAGES calls are in flight, fewer than
OPENAI_IMAGES_PER_MINUTE started in the last minute, and the organisation is not paused.
Refused, the transaction rolls back, the claim with it, and the shot goes back to its
subscription (`ModelBusy` is retryable), whose backoff spaces the next attempt: work beyond the
ceiling waits there, not in a loop here.

The slot is held under the claim's token: the claim's heartbeat renews both, and releasing the
claim or recording the shot ends the call (shared/generation/claims.py), so a dead worker's slot
lapses with its claim. A 429 that outlasts the client's retries pauses the organisation for the
answer's retry-after (`pause`), so every instance holds back at once, and the shot goes back to
its subscription: no job fails, and none falls back to Pillow, for a rate limit.
"""

from __future__ import annotations

from shared import config, db
from shared.errors import RateLimited
from shared.queries import model_calls


class ModelBusy(RateLimited):
    code = "model_busy"


def organisation() -> str:
    """The key the limits are kept under: the OpenAI organisation, or 'default'."""
    return config.settings().openai.organization or "default"


def admit(conn: db.Connection, token: str, lease_seconds: float) -> None:
    """Take a model slot for the claim `token`, or raise ModelBusy (the caller's transaction
    then rolls back)."""
    settings = config.settings().openai
    if not model_calls.admit(
        conn,
        token=token,
        organisation=organisation(),
        lease_seconds=lease_seconds,
        concurrent=settings.concurrent_images,
        per_minute=settings.images_per_minute,
    ):
        raise ModelBusy("the image model's limits are reached; retry later")


def pause(seconds: float) -> None:
    """Admit nothing for the organisation for `seconds` (the model answered 429)."""
    with db.transaction() as conn:
        model_calls.pause(conn, organisation=organisation(), seconds=seconds)
