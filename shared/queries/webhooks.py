"""Job webhooks: each user's signing secret, each job's webhook messages and their delivery
attempts (tables webhook_secrets, webhook_messages, webhook_deliveries)."""

from __future__ import annotations

from typing import Any

from shared.db import Connection, execute, one, rows

# ---- Signing secrets: the column default makes a new one ("whsec_" + 32 random bytes) -------

_CREATE_IF_MISSING = """
INSERT INTO webhook_secrets (user_id) VALUES (:user_id) ON CONFLICT (user_id) DO NOTHING
"""

# The caller's secret, made on first use; a concurrent first use may leave the SELECT empty
# (its snapshot predates the other insert): `secret` asks again.
_GET_OR_CREATE = """
WITH created AS (
    INSERT INTO webhook_secrets (user_id) VALUES (:user_id)
    ON CONFLICT (user_id) DO NOTHING
    RETURNING *
)
SELECT * FROM created
UNION ALL
SELECT * FROM webhook_secrets WHERE user_id = :user_id
LIMIT 1
"""

_ROTATE = """
INSERT INTO webhook_secrets (user_id) VALUES (:user_id)
ON CONFLICT (user_id) DO UPDATE
   SET previous_secret = webhook_secrets.secret,
       previous_expires_at = now() + make_interval(secs => :overlap_seconds),
       secret = EXCLUDED.secret,
       rotated_at = now()
RETURNING *
"""

# The secrets a delivery is signed with: the current one, and the previous one until it expires.
_SIGNING_SECRETS = """
SELECT secret, CASE WHEN previous_expires_at > now() THEN previous_secret END AS previous_secret
  FROM webhook_secrets WHERE user_id = :user_id
"""

# ---- Messages: one per event of a job, numbered in the order they are recorded ---------------

# Serialises the recording of one job's messages, so that each takes the next sequence number.
_LOCK_JOB = "SELECT pg_advisory_xact_lock(hashtextextended(CAST(:job_id AS text), 0))"

_RECORD_MESSAGE = """
WITH inserted AS (
    INSERT INTO webhook_messages (job_id, event_key, type, sequence, image_index, occurred_at)
    SELECT :job_id, :event_key, :type, COALESCE(max(sequence), 0) + 1, :image_index, :occurred_at
      FROM webhook_messages WHERE job_id = :job_id
    ON CONFLICT (job_id, event_key) DO NOTHING
    RETURNING *
)
SELECT * FROM inserted
UNION ALL
SELECT * FROM webhook_messages WHERE job_id = :job_id AND event_key = :event_key
LIMIT 1
"""

_STOPPED = (
    "EXISTS (SELECT 1 FROM webhook_messages s WHERE s.job_id = m.job_id AND s.status = 'stopped')"
)

_SKIP = f"""
UPDATE webhook_messages m SET status = 'skipped', lease_until = NULL
 WHERE m.id = :id AND m.status = 'pending' AND {_STOPPED}
RETURNING *
"""

# One attempt at a time: a pending message with no live claim, of a job whose receiver has not
# asked to stop. The claim counts the attempt.
_CLAIM = f"""
UPDATE webhook_messages m
   SET attempts = attempts + 1, lease_until = now() + make_interval(secs => :lease_seconds)
 WHERE m.id = :id AND m.status = 'pending' AND COALESCE(m.lease_until, '-infinity') < now()
   AND NOT {_STOPPED}
RETURNING *
"""

_RECORD_ATTEMPT = """
INSERT INTO webhook_deliveries
    (message_id, job_id, attempt, outcome, status_code, error, latency_ms)
VALUES (:message_id, :job_id, :attempt, :outcome, :status_code, :error, :latency_ms)
"""

# Settles the attempt this claim made (a claim taken over after its lease lapsed settles nothing).
_SETTLE = """
UPDATE webhook_messages SET status = :status, lease_until = NULL
 WHERE id = :id AND status = 'pending' AND attempts = :attempt
RETURNING *
"""

# A job's attempts, newest first, keyset on (created_at, id).
_DELIVERIES = """
SELECT d.id, d.attempt, d.outcome, d.status_code, d.error, d.latency_ms, d.created_at,
       m.id AS message_id, m.type, m.sequence, m.image_index, m.status AS message_status
  FROM webhook_deliveries d
  JOIN webhook_messages m ON m.id = d.message_id
 WHERE d.job_id = :job_id
   AND (CAST(:after_created_at AS timestamptz) IS NULL
        OR (d.created_at, d.id) < (CAST(:after_created_at AS timestamptz), CAST(:after_id AS uuid)))
 ORDER BY d.created_at DESC, d.id DESC
 LIMIT :limit
"""


def ensure_secret(conn: Connection, *, user_id: Any) -> None:
    execute(conn, _CREATE_IF_MISSING, {"user_id": user_id})


def secret(conn: Connection, *, user_id: Any) -> dict[str, Any]:
    params = {"user_id": user_id}
    found = one(conn, _GET_OR_CREATE, params) or one(conn, _GET_OR_CREATE, params)
    assert found is not None
    return found


def rotate(conn: Connection, *, user_id: Any, overlap_seconds: float) -> dict[str, Any]:
    row = one(conn, _ROTATE, {"user_id": user_id, "overlap_seconds": overlap_seconds})
    assert row is not None
    return row


def signing_secrets(conn: Connection, *, user_id: Any) -> list[str]:
    """The secrets to sign with, newest first (none if the user has no secret yet)."""
    row = one(conn, _SIGNING_SECRETS, {"user_id": user_id})
    return [s for s in (row["secret"], row["previous_secret"]) if s] if row else []


def record_message(
    conn: Connection,
    *,
    job_id: Any,
    event_key: str,
    type: str,
    image_index: int | None,
    occurred_at: Any,
) -> dict[str, Any]:
    """The job's message for the event, recorded now with the next sequence number or earlier."""
    execute(conn, _LOCK_JOB, {"job_id": str(job_id)})
    params = {"job_id": job_id, "event_key": event_key, "type": type}
    row = one(
        conn, _RECORD_MESSAGE, {**params, "image_index": image_index, "occurred_at": occurred_at}
    )
    assert row is not None
    return row


def skip_if_stopped(conn: Connection, message_id: Any) -> dict[str, Any] | None:
    return one(conn, _SKIP, {"id": message_id})


def claim(conn: Connection, message_id: Any, *, lease_seconds: float) -> dict[str, Any] | None:
    return one(conn, _CLAIM, {"id": message_id, "lease_seconds": lease_seconds})


def settle(
    conn: Connection, message: dict[str, Any], *, outcome: str, status: str, **answer: Any
) -> dict[str, Any] | None:
    """Record the claimed attempt (`answer`: status_code, error, latency_ms) and the message's
    new status; None if the claim had been taken over meanwhile."""
    attempt = {"message_id": message["id"], "job_id": message["job_id"], "outcome": outcome}
    execute(conn, _RECORD_ATTEMPT, {**attempt, "attempt": message["attempts"], **answer})
    return one(
        conn, _SETTLE, {"id": message["id"], "status": status, "attempt": message["attempts"]}
    )


def deliveries(
    conn: Connection, *, job_id: Any, limit: int, after: tuple[Any, Any] | None = None
) -> list[dict[str, Any]]:
    after_created_at, after_id = after or (None, None)
    params = {"job_id": job_id, "limit": limit}
    return rows(
        conn, _DELIVERIES, {**params, "after_created_at": after_created_at, "after_id": after_id}
    )
