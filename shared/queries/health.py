"""The readiness probe's statement."""

from __future__ import annotations

from shared.db import Connection, one


def ping(conn: Connection) -> bool:
    return one(conn, "SELECT 1 AS ok") is not None
