"""The image model's calls per organisation: admission under the organisation's lock, the
lease a claim's heartbeat renews, the end of a call, and the pause after a 429."""

from __future__ import annotations

from typing import Any

from shared.db import Connection, execute, one

# The admission lock: pg_advisory_xact_lock(int, int) keyed by this module's class (20020; the
# migration's one-key lock is another key space) and the organisation's hash, held to the end of the
# transaction. Admissions of one organisation take turns, so their counts are exact.
_LOCK = "SELECT 1 AS locked FROM pg_advisory_xact_lock(20020, hashtext(:organisation))"

# Rows that no longer count (older than the window, and ended or lapsed) go first; a paused
# organisation, or one at either limit, admits nothing.
_ADMIT = """
WITH expired AS (
    DELETE FROM model_calls
     WHERE organisation = :organisation AND started_at < now() - interval '1 minute'
       AND (ended_at IS NOT NULL OR lease_until < now())
)
INSERT INTO model_calls (token, organisation, lease_until)
SELECT :token, :organisation, now() + make_interval(secs => :lease_seconds)
 WHERE NOT EXISTS (SELECT 1 FROM model_pauses
                    WHERE organisation = :organisation AND paused_until > now())
   AND (SELECT count(*) FROM model_calls
         WHERE organisation = :organisation AND ended_at IS NULL AND lease_until > now())
       < :concurrent
   AND (SELECT count(*) FROM model_calls
         WHERE organisation = :organisation AND started_at > now() - interval '1 minute')
       < :per_minute
RETURNING token
"""

_RENEW = """
UPDATE model_calls SET lease_until = now() + make_interval(secs => :seconds)
 WHERE token = :token AND ended_at IS NULL
"""

_END = "UPDATE model_calls SET ended_at = now() WHERE token = :token AND ended_at IS NULL"

_PAUSE = """
INSERT INTO model_pauses (organisation, paused_until)
VALUES (:organisation, now() + make_interval(secs => :seconds))
ON CONFLICT (organisation) DO UPDATE
   SET paused_until = GREATEST(model_pauses.paused_until, EXCLUDED.paused_until)
"""


def admit(
    conn: Connection,
    *,
    token: str,
    organisation: str,
    lease_seconds: float,
    concurrent: int,
    per_minute: int,
) -> bool:
    """Take a slot for one call under `token`, if the organisation's limits allow it now."""
    one(conn, _LOCK, {"organisation": organisation})
    params: dict[str, Any] = {"token": token, "organisation": organisation}
    params |= {"lease_seconds": lease_seconds, "concurrent": concurrent, "per_minute": per_minute}
    return one(conn, _ADMIT, params) is not None


def renew(conn: Connection, *, token: str, seconds: float) -> None:
    execute(conn, _RENEW, {"token": token, "seconds": seconds})


def end(conn: Connection, token: str) -> None:
    execute(conn, _END, {"token": token})


def pause(conn: Connection, *, organisation: str, seconds: float) -> None:
    execute(conn, _PAUSE, {"organisation": organisation, "seconds": seconds})
