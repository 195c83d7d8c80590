"""shared.db on a real server: prepared statements, transactions, broken and idle connections."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared import config, db
from shared.db import ConstraintViolation, connections, statements
from shared.errors import AppError, Transient
from tools.pgcluster import connect


def _backend(conn: db.Connection) -> int:
    return db.one(conn, "SELECT pg_backend_pid() AS pid")["pid"]


def test_a_statement_is_prepared_once_per_connection(database):
    sql = "SELECT CAST(:n AS integer) + :n AS twice, CAST(:m AS text)::text AS m"
    for n in range(3):
        with db.transaction() as conn:
            assert db.one(conn, sql, {"n": n, "m": "x"}) == {"twice": 2 * n, "m": "x"}
    with db.transaction() as conn:
        prepared = db.rows(
            conn,
            "SELECT statement FROM pg_prepared_statements WHERE statement LIKE :pattern",
            {"pattern": "%AS twice%"},
        )
    assert len(prepared) == 1
    assert "$1" in prepared[0]["statement"] and "::text" in prepared[0]["statement"]


def test_an_error_rolls_back_the_whole_transaction_and_the_connection_serves_on(database):
    with pytest.raises(ConstraintViolation), db.transaction() as conn:
        db.execute(conn, "CREATE TABLE IF NOT EXISTS t_layer (k int PRIMARY KEY)")
        db.execute(conn, "INSERT INTO t_layer VALUES (1)")
        db.execute(conn, "INSERT INTO t_layer VALUES (1)")
    with db.transaction() as conn:
        found = db.one(conn, "SELECT to_regclass('t_layer') AS t")
    assert found == {"t": None}  # the CREATE went with the failed transaction


def test_an_exception_in_the_body_rolls_back(database):
    with pytest.raises(RuntimeError), db.transaction() as conn:
        db.execute(conn, "CREATE TABLE t_body (k int)")
        raise RuntimeError("the caller changed its mind")
    with db.transaction() as conn:
        assert db.one(conn, "SELECT to_regclass('t_body') AS t") == {"t": None}


def test_begin_travels_with_a_prepared_first_statement_and_still_opens_the_transaction(database):
    with db.transaction() as conn:
        db.execute(conn, "CREATE TABLE t_pipelined (k int)")
    for attempt in range(3):  # the first prepares the INSERT; the others send BEGIN along with it
        with pytest.raises(RuntimeError), db.transaction() as conn:
            db.execute(conn, "INSERT INTO t_pipelined VALUES (:k)", {"k": attempt})
            assert db.one(conn, "SELECT count(*) AS n FROM t_pipelined") == {"n": 1}
            raise RuntimeError("rolled back")
    for _ in range(2):  # statements of one transaction share its transaction id
        with db.transaction() as conn:
            first = db.one(conn, "SELECT txid_current() AS id")
            second = db.one(conn, "SELECT txid_current() AS id, 2 AS two")
        assert first["id"] == second["id"]


def test_timestamps_read_as_aware_datetimes_and_infinity_survives(database):
    with db.transaction() as conn:
        row = db.one(
            conn,
            """SELECT TIMESTAMPTZ '2026-11-30 11:37:46.1234+05:30' AS aware,
                      TIMESTAMP '2026-11-30 11:37:46' AS naive,
                      TIMESTAMPTZ 'infinity' AS forever""",
        )
    assert row["aware"] == datetime(2026, 11, 30, 6, 7, 46, 123400, tzinfo=UTC)
    assert row["naive"] == datetime(2026, 11, 30, 11, 37, 46)
    assert row["forever"] == "infinity"


def test_a_connection_killed_mid_request_fails_it_and_the_next_one_reconnects(database):
    with db.transaction() as conn:
        victim = _backend(conn)
    with pytest.raises(Transient), db.transaction() as conn:
        assert _backend(conn) == victim  # the pool hands back the same connection
        with db.transaction() as other:
            db.one(other, "SELECT pg_terminate_backend(:pid)", {"pid": victim})
        db.one(conn, "SELECT 1 AS one")
    with db.transaction() as conn:
        assert _backend(conn) != victim


def test_a_connection_dropped_while_idle_is_replaced_unseen(database, monkeypatch):
    monkeypatch.setattr(connections, "PING_AFTER_IDLE_SECONDS", 0.0)
    with db.transaction() as conn:
        victim = _backend(conn)
    outside = connect(database)
    try:
        outside.run("SELECT pg_terminate_backend(:pid)", pid=victim)
    finally:
        outside.close()
    with db.transaction() as conn:  # the checkout's ping finds it dead and connects anew
        assert _backend(conn) != victim


def test_statements_made_stale_by_a_migration_fail_once_then_are_prepared_afresh(database):
    with db.transaction() as conn:
        db.execute(conn, "CREATE TABLE t_migrated (k int)")
        db.execute(conn, "INSERT INTO t_migrated VALUES (1)")
    with db.transaction() as conn:
        assert db.rows(conn, "SELECT * FROM t_migrated") == [{"k": 1}]  # prepared here
    outside = connect(database)
    try:
        outside.run("ALTER TABLE t_migrated ADD COLUMN added text DEFAULT 'x'")
    finally:
        outside.close()
    with pytest.raises(Transient), db.transaction() as conn:
        db.rows(conn, "SELECT * FROM t_migrated")
    with db.transaction() as conn:
        assert db.rows(conn, "SELECT * FROM t_migrated") == [{"k": 1, "added": "x"}]


def test_a_malformed_statement_is_a_plain_database_error(database):
    with pytest.raises(AppError) as caught, db.transaction() as conn:
        db.one(conn, "SELEC 1")
    assert type(caught.value) is AppError and caught.value.http_status == 500


def test_parameters_are_numbered_once_and_casts_left_alone():
    text, names = statements._numbered("SELECT :a, :b::int, CAST(:a AS text), x::jsonb, '{}'")
    assert text == "SELECT $1, $2::int, CAST($1 AS text), x::jsonb, '{}'"
    assert names == ("a", "b")


def test_connections_carry_the_function_name_in_pg_stat_activity(database, monkeypatch):
    monkeypatch.setenv("K_SERVICE", "render-image")
    config.settings.cache_clear()
    db.dispose()
    try:
        with db.transaction() as conn:
            mine = db.one(
                conn,
                "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            )
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()
        db.dispose()
    assert mine == {"application_name": "imagegen/render-image"}
