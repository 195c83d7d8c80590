"""The image model's limits, shared through PostgreSQL: calls in flight, calls per minute, the
pause after a 429, and admissions racing from many threads."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import config, db
from shared.generation import model_slots
from shared.queries import model_calls


@pytest.fixture
def limits(database, monkeypatch):
    """Set the organisation's limits for one test: limits(concurrent=, per_minute=)."""

    def set_limits(concurrent: int = 1000, per_minute: int = 2000, organisation: str = "") -> None:
        monkeypatch.setenv("OPENAI_CONCURRENT_IMAGES", str(concurrent))
        monkeypatch.setenv("OPENAI_IMAGES_PER_MINUTE", str(per_minute))
        monkeypatch.setenv("OPENAI_ORGANIZATION", organisation)
        config.settings.cache_clear()

    yield set_limits
    monkeypatch.undo()
    config.settings.cache_clear()


def admit() -> str | None:
    """A new token's slot, or None when the limits refuse it (and roll its transaction back)."""
    token = uuid.uuid4().hex
    try:
        with db.transaction() as conn:
            model_slots.admit(conn, token, 30)
    except model_slots.ModelBusy:
        return None
    return token


def end(token: str) -> None:
    with db.transaction() as conn:
        model_calls.end(conn, token)


def calls() -> list[dict]:
    with db.transaction() as conn:
        return db.rows(conn, "SELECT * FROM model_calls ORDER BY started_at")


def test_calls_in_flight_are_capped_and_an_ended_call_frees_its_slot(limits):
    limits(concurrent=2)
    first, second = admit(), admit()
    assert first and second
    assert admit() is None
    assert len(calls()) == 2  # the refusal left nothing behind

    end(first)
    assert admit() is not None


def test_calls_started_within_the_minute_are_capped_even_when_ended(limits):
    limits(per_minute=2)
    for token in (admit(), admit()):
        assert token
        end(token)
    assert admit() is None
    with db.transaction() as conn:  # a minute later
        db.execute(conn, "UPDATE model_calls SET started_at = started_at - interval '61 seconds'")
    assert admit() is not None
    assert len(calls()) == 1  # the admission removed the rows that no longer count


def test_a_lapsed_lease_frees_the_slot_of_a_worker_that_died(limits):
    limits(concurrent=1)
    dead = admit()
    assert dead and admit() is None
    with db.transaction() as conn:
        db.execute(conn, "UPDATE model_calls SET lease_until = now() - interval '1 second'")
    assert admit() is not None


def test_the_heartbeat_renews_a_call_and_a_renewal_after_its_end_changes_nothing(limits):
    limits()
    token = admit()
    assert token
    with db.transaction() as conn:
        db.execute(conn, "UPDATE model_calls SET lease_until = now() + interval '1 second'")
        model_calls.renew(conn, token=token, seconds=300)
    (row,) = calls()
    assert (row["lease_until"] - row["started_at"]).total_seconds() > 200
    end(token)
    with db.transaction() as conn:
        model_calls.renew(conn, token=token, seconds=600)
    (row,) = calls()
    assert row["ended_at"] is not None
    assert (row["lease_until"] - row["started_at"]).total_seconds() < 400


def test_a_pause_holds_back_its_organisation_only_and_a_shorter_one_never_shortens_it(limits):
    limits(organisation="org-a")
    model_slots.pause(60)
    model_slots.pause(1)  # a later, shorter 429 keeps the longer pause
    assert admit() is None
    limits(organisation="org-b")
    assert admit() is not None
    with db.transaction() as conn:
        (pause,) = db.rows(conn, "SELECT * FROM model_pauses")
        left = db.one(conn, "SELECT now() AS now")["now"]
    assert pause["organisation"] == "org-a"
    assert (pause["paused_until"] - left).total_seconds() > 50


def test_racing_admissions_never_exceed_the_limit(limits, monkeypatch):
    monkeypatch.setenv("DB_POOL_SIZE", "20")  # twenty transactions at once, not two
    limits(concurrent=5)
    db.dispose()
    start = threading.Barrier(20)

    def race(_: int) -> str | None:
        start.wait(timeout=10)
        return admit()

    with ThreadPoolExecutor(20) as pool:
        admitted = [t for t in pool.map(race, range(20)) if t]
    assert len(admitted) == 5
    assert sorted(r["token"] for r in calls()) == sorted(admitted)
