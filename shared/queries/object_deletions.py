"""The outbox of object deletions: names (and the generations recorded for them) written with
the delete, the row's id published after commit, the row removed once its objects are gone."""

from __future__ import annotations

from typing import Any

from shared.db import Connection, execute, one, rows

# The writer keeps the row to itself for `hold_seconds` (it publishes right after commit);
# only then may the republisher take it.
_ADD = """
INSERT INTO pending_object_deletions (object_names, object_generations, reason, publish_after)
VALUES (CAST(:object_names AS text[]), CAST(:object_generations AS bigint[]), :reason,
        now() + make_interval(secs => :hold_seconds))
RETURNING id, object_names, object_generations, reason
"""

# Claim due rows for one republish attempt: concurrent republishers skip each other's rows, and
# a claimed row comes due again after `hold_seconds` unless its purge deletes it first.
_CLAIM_DUE = """
UPDATE pending_object_deletions p
   SET attempts = p.attempts + 1,
       publish_after = now() + make_interval(secs => :hold_seconds)
 WHERE p.id IN (SELECT id FROM pending_object_deletions
                 WHERE publish_after <= now()
                 ORDER BY publish_after
                 LIMIT :limit
                 FOR UPDATE SKIP LOCKED)
RETURNING p.id, p.object_names, p.object_generations, p.reason, p.attempts
"""

_GET = """
SELECT id, object_names, object_generations, reason FROM pending_object_deletions WHERE id = :id
"""

_REMOVE = "DELETE FROM pending_object_deletions WHERE id = :id"


def add(
    conn: Connection,
    *,
    object_names: list[str],
    object_generations: list[int | None],
    reason: str,
    hold_seconds: int,
) -> dict[str, Any]:
    found = one(
        conn,
        _ADD,
        {
            "object_names": object_names,
            "object_generations": object_generations,
            "reason": reason,
            "hold_seconds": hold_seconds,
        },
    )
    assert found is not None
    return found


def claim_due(conn: Connection, *, limit: int, hold_seconds: int) -> list[dict[str, Any]]:
    return rows(conn, _CLAIM_DUE, {"limit": limit, "hold_seconds": hold_seconds})


def get(conn: Connection, *, outbox_id: Any) -> dict[str, Any] | None:
    return one(conn, _GET, {"id": outbox_id})


def remove(conn: Connection, *, outbox_id: Any) -> int:
    return execute(conn, _REMOVE, {"id": outbox_id})
