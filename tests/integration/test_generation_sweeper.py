"""The sweep_jobs maintenance task, and the finish events it repairs, on a real PostgreSQL."""

from __future__ import annotations

import pytest

from shared import config, db, maintenance
from shared.generation import job_events, planning, rendering, sweeper
from shared.queries import job_runs
from tests.integration import factories as make
from tests.integration.jobs import current, expire_leases, images_of, submit


@pytest.fixture(autouse=True)
def redrives(monkeypatch):
    """Two re-drives before a stalled job fails."""
    monkeypatch.setenv("JOB_MAX_REDRIVES", "2")
    config.settings.cache_clear()


def sql(statement: str, **params) -> None:
    with db.transaction() as conn:
        db.execute(conn, statement, params)


def test_a_job_never_planned_is_re_driven_then_failed(cloud):
    with db.transaction() as conn:  # recorded, but its request was never published
        owner = make.user(conn)
        job = make.job(conn, owner, make.session(conn, owner), number_of_shots=1)

    first = sweeper.sweep_jobs(stall_seconds=0)
    second = sweeper.sweep_jobs(stall_seconds=0)
    third = sweeper.sweep_jobs(stall_seconds=0)

    assert (first["redriven"], second["redriven"], third["failed"]) == (1, 1, 1)
    assert len(cloud.messages("generation-requests", job["id"], at_least=2)) == 2
    failed = current(job)
    assert (
        failed["status"] == "failed" and "no progress after 2 re-drives" in failed["error_message"]
    )
    (event,) = cloud.messages("generation-events", job["id"], at_least=1)
    assert event["status"] == "failed"


def test_a_dead_lettered_shot_is_re_driven_alone_and_the_job_completes(cloud):
    job = submit(number_of_shots=3)
    planning.plan(job["id"])
    rendering.render_shot(job["id"], 1)
    rendering.render_shot(job["id"], 3)  # shot 2's message went to the dead-letter topic
    before = cloud.messages("render-requests", job["id"], at_least=3)

    assert sweeper.sweep_jobs(stall_seconds=0)["redriven"] == 1

    after = cloud.messages("render-requests", job["id"], at_least=len(before) + 1)
    assert [m["index"] for m in after[len(before) :]] == [2]
    rendering.render_shot(job["id"], 2)
    assert current(job)["status"] == "completed" and len(images_of(job)) == 3


def test_a_half_planned_job_gets_its_plan_again(cloud):
    job = submit(number_of_shots=2)
    with db.transaction() as conn:  # a planner that died after starting the job
        job_runs.claim_plan(conn, job_id=job["id"], token="dead", seconds=30)
        job_runs.start(conn, job_id=job["id"], token="dead", generated_prompt="p")
    assert sweeper.sweep_jobs(stall_seconds=0)["redriven"] == 0  # its claim is alive
    expire_leases(job)

    assert sweeper.sweep_jobs(stall_seconds=0)["redriven"] == 1
    assert len(cloud.messages("generation-requests", job["id"], at_least=2)) == 2


def test_a_quiet_job_waits_for_the_stall_period(cloud):
    job = submit(number_of_shots=1)
    assert sweeper.sweep_jobs()["stalled"] == 0  # JOB_STALL_SECONDS has not passed
    assert current(job)["redrives"] == 0


def test_an_overdue_job_fails_even_with_a_live_claim(cloud):
    job = submit(number_of_shots=2)
    planning.plan(job["id"])
    with db.transaction() as conn:
        job_runs.claim_shot(conn, job_id=job["id"], index=1, token="slow", seconds=300)
    sql(
        "UPDATE generation_jobs SET deadline_at = now() - interval '1 second' WHERE id = :id",
        id=job["id"],
    )

    assert sweeper.sweep_jobs()["failed"] == 1
    failed = current(job)
    assert failed["status"] == "failed" and "did not finish within" in failed["error_message"]
    rendering.render_shot(job["id"], 2)  # what was still queued renders nothing
    assert images_of(job) == []


def test_a_finish_whose_event_was_lost_is_announced_once(cloud):
    job = submit(number_of_shots=1)
    with db.transaction() as conn:  # finished, then the worker died before publishing
        job_runs.fail(
            conn, job_id=job["id"], error_message="boom", error_code="x", event_lease_seconds=30
        )

    assert job_events.flush(job["id"]) is False  # the winner's lease still holds it
    sql("UPDATE generation_jobs SET event_lease_until = NULL WHERE id = :id", id=job["id"])
    assert maintenance.run({"task": "sweep_jobs"})["events"] == 1
    assert sweeper.sweep_jobs()["events"] == 0
    assert job_events.flush(job["id"]) is False

    (event,) = cloud.messages("generation-events", job["id"], at_least=2, timeout=2)
    assert (event["status"], event["error_message"]) == ("failed", "boom")
    assert current(job)["event_published_at"] is not None
