"""The queries that grow with the data can be answered from indexes.

With sequential scans priced out (`enable_seqscan = off`), a plan that still scans a table
sequentially has no index it could use: at 10M images such a query reads the whole table
(the session-delete query once took 14 s that way). bench/bench_api.py checks the hot pages'
plans on real volumes.
"""

from __future__ import annotations

import uuid

import pytest

from shared import db
from shared.queries import generated_images, sessions

SOME = str(uuid.uuid4())
NOW = "2026-11-30T12:00:00+00:00"


@pytest.mark.parametrize(
    ("label", "sql", "params"),
    [
        ("session's objects (delete)", sessions._OBJECTS, {"id": SOME}),
        (
            "sessions list",
            sessions._LIST_FOR_USER,
            {"user_id": SOME, "limit": 21, "after_updated_at": None, "after_id": None},
        ),
        (
            "sessions list, next page",
            sessions._LIST_FOR_USER,
            {"user_id": SOME, "limit": 21, "after_updated_at": NOW, "after_id": SOME},
        ),
        (
            "gallery page",
            generated_images._GALLERY_PAGE,
            {
                "session_id": SOME,
                "user_id": SOME,
                "limit": 21,
                "after_created_at": None,
                "after_job_id": None,
                "after_index": 0,
            },
        ),
    ],
)
def test_query_is_answered_from_indexes(database, label, sql, params):
    with db.transaction() as conn:
        db.execute(conn, "SET LOCAL enable_seqscan = off")
        plan = "\n".join(r["QUERY PLAN"] for r in db.rows(conn, "EXPLAIN " + sql, params))
    assert "Seq Scan" not in plan, f"{label}:\n{plan}"
