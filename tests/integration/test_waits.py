"""Waiting instead of polling, on a real PostgreSQL: the triggers' notifications, the one LISTEN
connection per process, blocking reads and `Prefer: wait` on create, and that a waiting request
holds no database connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared import changes, db
from shared.queries import job_runs
from tests.apikit import call_as
from tests.integration import factories as make
from tools.pgcluster import connect


@pytest.fixture
def listening(database: str) -> Iterator[str]:
    """A fresh process listener for this test's database, stopped before the database goes."""
    changes.reset()
    yield database
    changes.reset()


@pytest.fixture
def owner(listening: str, api_env: None) -> dict[str, Any]:
    with db.transaction() as conn:
        return make.user(conn)


def _job(owner: dict[str, Any], shots: int = 2) -> tuple[dict[str, Any], dict[str, Any]]:
    with db.transaction() as conn:
        session = make.session(conn, owner)
        return make.job(conn, owner, session, number_of_shots=shots), session


def _notifications(listener: Any) -> list[str]:
    listener.run("SELECT 1")  # pg8000 reads pending notifications with any answer
    found = [payload for _, channel, payload in listener.notifications]
    listener.notifications.clear()
    return found


def test_transactions_that_change_a_job_or_a_session_notify_them_at_commit(listening: str) -> None:
    listener = connect(listening)
    listener.run(f"LISTEN {changes.CHANNEL}")
    try:
        with db.transaction() as conn:
            owner = make.user(conn)
        job, session = _job(owner)
        assert _notifications(listener) == []  # creating rows notifies nobody

        with db.transaction() as conn:
            job_runs.claim_plan(conn, job_id=job["id"], token="t", seconds=30)
            job_runs.renew(conn, job_id=job["id"], key="plan", token="t", seconds=30)
        assert _notifications(listener) == []  # claims and heartbeats change only leases

        with db.transaction() as conn:
            job_runs.start(conn, job_id=job["id"], token="t", generated_prompt="p")
        assert _notifications(listener) == [f"job:{job['id']}"]

        with db.transaction() as conn:  # a shot lands: the job, and the session's count
            make.image(conn, job, 1)
            make.image(conn, job, 2)
        assert sorted(_notifications(listener)) == [f"job:{job['id']}", f"session:{session['id']}"]

        with pytest.raises(RuntimeError), db.transaction() as conn:
            db.execute(conn, "UPDATE sessions SET title = 'x' WHERE id = :id", session)
            raise RuntimeError("rolled back")
        assert _notifications(listener) == []

        with db.transaction() as conn:
            db.execute(conn, "DELETE FROM sessions WHERE id = :id", session)
        assert sorted(_notifications(listener)) == [
            f"job:{job['id']}",
            f"session:{session['id']}",
        ]
    finally:
        listener.close()


def test_the_listener_wakes_one_key_and_comes_back_after_losing_its_connection(
    listening: str,
) -> None:
    other = connect(listening)
    listener = changes.listener()
    try:
        with listener.subscribe("job:a") as a, listener.subscribe("job:b") as b:
            assert listener.listening.wait(10)
            a.wait(0)
            b.wait(0)  # the (re)connect wakes every subscriber once
            other.run("SELECT pg_notify(:c, 'job:a')", c=changes.CHANNEL)
            assert a.wait(5) and not b.wait(0.2)

            # WHEN the server drops the listen connection
            other.run(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            )
            # THEN it connects again and wakes everyone to read again ...
            assert a.wait(10) and b.wait(10)
            assert listener.listening.wait(10)
            # ... and hears the next change
            other.run("SELECT pg_notify(:c, 'job:b')", c=changes.CHANNEL)
            assert b.wait(5)
        assert listener.waiting() == 0
    finally:
        other.close()


def test_a_job_carries_an_etag_and_if_none_match_answers_304(owner: dict[str, Any]) -> None:
    job, _ = _job(owner)
    path = f"/v1/generations/{job['id']}"
    status, _, headers = call_as(owner, "GET", path)
    tag = headers["ETag"]
    assert status == 200 and tag.startswith('W/"')

    status, shown, same = call_as(owner, "GET", path, headers={"If-None-Match": tag})
    assert status == 304 and same["ETag"] == tag and shown is None
    assert call_as(owner, "GET", path, headers={"If-None-Match": '"x"'})[0] == 200

    started = time.monotonic()
    status, _, waited = call_as(
        owner, "GET", path, headers={"If-None-Match": tag, "Prefer": "wait=1"}
    )
    assert status == 304 and time.monotonic() - started >= 1
    assert waited["Preference-Applied"] == "wait=1"

    started = time.monotonic()  # `*` matches any version: nothing to wait for
    status, _, at_once = call_as(
        owner, "GET", path, headers={"If-None-Match": "*", "Prefer": "wait=9"}
    )
    assert status == 304 and time.monotonic() - started < 5
    assert "Preference-Applied" not in at_once


def test_a_blocking_read_wakes_when_an_image_lands_and_holds_no_connection(
    owner: dict[str, Any],
) -> None:
    job, session = _job(owner)
    paths = [f"/v1/generations/{job['id']}", f"/v1/sessions/{session['id']}"]
    tags = {path: call_as(owner, "GET", path)[2]["ETag"] for path in paths}

    def wait(path: str) -> tuple[str, Any, float]:
        headers = {"If-None-Match": tags[path], "Prefer": "wait=20"}
        return path, call_as(owner, "GET", path, headers=headers), time.monotonic()

    with ThreadPoolExecutor(10) as pool:
        waiting = [pool.submit(wait, paths[i % 2]) for i in range(10)]

        def all_waiting() -> bool:  # subscribed, and done with their first read
            return changes.listener().waiting() == 10 and db.pool().checkedout() == 0

        deadline = time.monotonic() + 10
        while not all_waiting() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert all_waiting()  # ten requests wait; not one holds a connection
        with db.transaction() as conn:
            make.image(conn, job, 1)
        landed = time.monotonic()
        answers = [f.result(timeout=30) for f in waiting]
    for path, (status, shown, headers), answered in answers:
        assert status == 200 and answered - landed < 3
        assert headers["ETag"] != tags[path] and headers["Preference-Applied"] == "wait=20"
        if path == paths[0]:
            assert shown["progress"] == {"done": 1, "total": 2}
        else:
            assert shown["generated_count"] == 1


def test_prefer_wait_on_create_answers_with_the_finished_job(cloud, alice) -> None:
    changes.reset()
    try:
        started = time.monotonic()
        status, job, headers = call_as(
            alice, "POST", "/v1/generations", {"prompt": "p"}, headers={"Prefer": "wait=1"}
        )
        assert status == 202 and job["status"] == "pending" and time.monotonic() - started >= 1
        assert headers["Preference-Applied"] == "wait=1" and headers["ETag"]

        def finish_soon() -> None:
            time.sleep(0.5)
            with db.transaction() as conn:
                created = db.one(
                    conn, "SELECT id FROM generation_jobs WHERE prompt = 'finish me'", {}
                )
                job_runs.fail(
                    conn,
                    job_id=created["id"],
                    error_message="x",
                    error_code="test",
                    event_lease_seconds=0,
                )

        finisher = threading.Thread(target=finish_soon)
        finisher.start()
        status, done, headers = call_as(
            alice, "POST", "/v1/generations", {"prompt": "finish me"}, headers={"Prefer": "wait=20"}
        )
        finisher.join()
        assert status == 200 and done["status"] == "failed"
        assert headers["Preference-Applied"] == "wait=20"
    finally:
        changes.reset()
