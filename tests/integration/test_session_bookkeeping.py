"""A session's count and thumbnail, kept by the image triggers, under concurrent inserts and
deletes: after every round the thumbnail is the session's first remaining image (by
created_at, id) and the count equals its rows. And deleting a session costs its triggers
nothing per image."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pg8000.native

from shared import db
from tests.integration import factories as make
from tools.pgcluster import connect

ROUNDS = 40


def _check_invariant(session_id: Any, round_number: int) -> None:
    with db.transaction() as conn:
        session = db.one(conn, "SELECT * FROM sessions WHERE id = :id", {"id": session_id})
        images = db.rows(
            conn,
            "SELECT id, gcp_url FROM generated_images WHERE session_id = :id"
            " ORDER BY created_at, id",
            {"id": session_id},
        )
    first = images[0] if images else {"id": None, "gcp_url": None}
    seen = (session["generated_count"], session["thumbnail_image_id"], session["thumbnail_url"])
    assert seen == (len(images), first["id"], first["gcp_url"]), f"round {round_number}"


def _together(actions: list[Callable[[db.Connection], object]]) -> None:
    """Each action in its own transaction, all started at once and held open for a moment
    after their statement, so that their triggers overlap."""
    barrier = threading.Barrier(len(actions))
    failures: list[BaseException] = []

    def run(action: Callable[[db.Connection], object]) -> None:
        try:
            with db.transaction() as conn:
                db.one(conn, "SELECT 1")  # the transaction (and its now()) starts here
                barrier.wait(timeout=10)
                action(conn)
                time.sleep(random.uniform(0, 0.02))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not failures, failures


def _delete(image_id: Any) -> Callable[[db.Connection], object]:
    return lambda conn: db.execute(
        conn, "DELETE FROM generated_images WHERE id = :id", {"id": image_id}
    )


def _insert(job: dict[str, Any], index: int) -> Callable[[db.Connection], object]:
    return lambda conn: make.image(conn, job, index)


def test_thumbnail_and_count_hold_under_concurrent_deletes_and_inserts(database, monkeypatch):
    monkeypatch.setenv("DB_POOL_SIZE", "6")
    db.dispose()
    with db.transaction() as conn:
        owner, session = make.owned_session(conn)
    for round_number in range(ROUNDS):
        with db.transaction() as conn:
            old_job = make.job(conn, owner, session, number_of_shots=3)
            new_job = make.job(conn, owner, session, number_of_shots=3)
            old = [make.image(conn, old_job, i) for i in (1, 2, 3)]
        with db.transaction() as conn:
            images = db.rows(
                conn,
                "SELECT id FROM generated_images WHERE session_id = :id ORDER BY created_at, id",
                {"id": session["id"]},
            )
        # GIVEN the session's thumbnail and the image after it
        # WHEN both are deleted while new images are recorded (and, every other round, while
        # the session loses its last images)
        first, second = images[0]["id"], images[1]["id"]
        actions = [_delete(first), _delete(second), _insert(new_job, 1), _insert(new_job, 2)]
        if round_number % 2:
            actions += [_delete(r["id"]) for r in images[2:]]
        _together(actions)
        # THEN the thumbnail is the first image left and the count is the number of rows
        _check_invariant(session["id"], round_number)
        with db.transaction() as conn:  # the next round starts from an empty session
            db.execute(conn, "DELETE FROM generated_images WHERE session_id = :id", session)
        assert old
        _check_invariant(session["id"], round_number)
    db.dispose()


def _index_entries_read(conn: pg8000.native.Connection) -> int:
    """Index entries of generated_images read by scans so far, this backend's own included
    (its pending counts are flushed before the next statement's answer)."""
    conn.run("SELECT pg_stat_force_next_flush()")
    conn.run("SELECT pg_stat_clear_snapshot()")
    found = conn.run(
        "SELECT COALESCE(sum(idx_tup_read), 0) FROM pg_stat_user_indexes"
        " WHERE relname = 'generated_images'"
    )
    return int(found[0][0])


def test_deleting_a_session_costs_its_image_triggers_no_scans(database):
    images = 300
    with db.transaction() as conn:
        owner, session = make.owned_session(conn)
        for _ in range(images // 10):
            job = make.job(conn, owner, session, number_of_shots=10)
            for index in range(1, 11):
                make.image(conn, job, index)
    conn = connect(database)
    try:
        before = _index_entries_read(conn)
        conn.run("DELETE FROM sessions WHERE id = :id", id=session["id"])
        read = _index_entries_read(conn) - before
    finally:
        conn.close()
    # The cascade reads each image's index entries a few times; a trigger that looked for the
    # next thumbnail per deleted image read them all again for each: images squared.
    assert read < 5 * images, read
