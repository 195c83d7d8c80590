"""Per-user limits through the api's dispatcher, on a real PostgreSQL and the emulators: each
limit answered 429 with Retry-After and the RateLimit headers, concurrent requests that cannot
overshoot, per-user overrides, and GET /v1/me's usage."""

from __future__ import annotations

import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared import config, db
from shared.generation import job_events
from tests.apikit import DOCUMENT, call_as
from tools.fixtures import images as imagefactory

DAY = 24 * 3600


@pytest.fixture
def limit(cloud, monkeypatch):
    """Set a default limit (LIMIT_<NAME>) for the rest of the test."""

    def set_default(name: str, value: int) -> None:
        monkeypatch.setenv(f"LIMIT_{name.upper()}", str(value))
        config.settings.cache_clear()

    return set_default


def create(user: dict[str, Any], shots: int = 1, **headers: str) -> Any:
    body = {"prompt": "a lighthouse", "number_of_shots": shots}
    return call_as(user, "POST", "/v1/generations", body, headers=headers)


def signed_url(user: dict[str, Any], size: int = 100) -> Any:
    body = {"file_name": "a.png", "mime_type": "image/png", "file_size": size}
    return call_as(user, "POST", "/v1/uploads/signed-url", body)


def multipart(user: dict[str, Any], data: bytes) -> Any:
    return call_as(user, "POST", "/v1/uploads", data={"file": (io.BytesIO(data), "a.png")})


def rate(headers: dict[str, str]) -> dict[str, dict[str, str]]:
    """The RateLimit field by policy: {"images_per_day": {"r": "7", "t": "86400"}}."""
    found = {}
    for item in headers["RateLimit"].split(", "):
        name, *params = item.split(";")
        found[json.loads(name)] = dict(p.split("=", 1) for p in params)
    return found


def refused(answer: Any, name: str, operation: tuple[str, str]) -> dict[str, Any]:
    """Assert a 429 naming the limit with every header the document promises; its details."""
    status, body, headers = answer
    assert status == 429, body
    assert body["error"]["code"] == "rate_limited" and body["error"]["details"]["limit"] == name
    assert name in body["error"]["message"]
    documented = DOCUMENT["paths"][operation[1]][operation[0]]["responses"]["429"]["headers"]
    assert set(documented) == {"Retry-After", "RateLimit-Policy", "RateLimit"}
    assert set(documented) <= set(headers)
    details = body["error"]["details"]
    assert f'"{name}";q={details["quota"]}' in headers["RateLimit-Policy"]
    assert int(rate(headers)[name]["r"]) < details["requested"]  # what is left does not suffice
    return {**details, "retry_after": int(headers["Retry-After"])}


def sql(statement: str, **params: Any) -> None:
    with db.transaction() as conn:
        db.execute(conn, statement, params)


def test_active_jobs_are_limited_and_a_finished_job_frees_its_slot(limit, alice):
    limit("active_jobs", 2)
    first, second = create(alice), create(alice)
    assert (first[0], second[0]) == (202, 202)
    assert rate(first[2])["active_jobs"] == {"r": "1"} and rate(second[2])["active_jobs"] == {
        "r": "0"
    }
    assert '"active_jobs";q=2;qu="concurrent-requests"' in first[2]["RateLimit-Policy"]

    details = refused(create(alice), "active_jobs", ("post", "/v1/generations"))

    assert details["retry_after"] == 15 and (details["quota"], details["used"]) == (2, 2)
    job_events.fail(first[1]["id"], "gone", "test")
    assert create(alice)[0] == 202


def test_images_per_rolling_day_are_limited_until_the_oldest_leaves_the_window(limit, alice):
    limit("images_per_day", 5)
    first = create(alice, shots=3)
    assert first[0] == 202 and rate(first[2])["images_per_day"]["r"] == "2"
    assert DAY - 5 <= int(rate(first[2])["images_per_day"]["t"]) <= DAY
    job_events.fail(first[1]["id"], "done with it", "test")  # finished jobs still count

    details = refused(create(alice, shots=3), "images_per_day", ("post", "/v1/generations"))

    assert (details["quota"], details["used"], details["requested"]) == (5, 3, 3)
    assert DAY - 5 <= details["retry_after"] <= DAY  # when the oldest count leaves the window
    assert create(alice, shots=2)[0] == 202  # what still fits is admitted
    sql("UPDATE images_requested SET requested_at = now() - interval '23 hours'")
    assert (
        3590
        <= refused(create(alice), "images_per_day", ("post", "/v1/generations"))["retry_after"]
        <= 3600
    )
    sql("UPDATE images_requested SET requested_at = now() - interval '25 hours'")
    assert create(alice, shots=5)[0] == 202


def test_a_retry_counts_the_shots_it_asks_for_again(limit, alice):
    limit("images_per_day", 4)
    _, job, _ = create(alice, shots=3)
    job_events.fail(job["id"], "failed for the test", "test")
    path = f"/v1/generations/{job['id']}/retry"

    refused(
        call_as(alice, "POST", path), "images_per_day", ("post", "/v1/generations/{job_id}/retry")
    )

    sql("UPDATE images_requested SET requested_at = now() - interval '25 hours'")
    status, retried, headers = call_as(alice, "POST", path)
    assert (status, retried["status"]) == (202, "pending")
    assert rate(headers)["images_per_day"]["r"] == "1"  # 3 missing shots counted again


def test_an_idempotent_replay_counts_once(limit, alice):
    limit("images_per_day", 3)
    first = create(alice, shots=2, **{"Idempotency-Key": "once"})
    again = create(alice, shots=2, **{"Idempotency-Key": "once"})
    assert (first[0], again[0], again[2]["Idempotent-Replayed"]) == (202, 202, "true")
    assert rate(again[2])["images_per_day"]["r"] == "1"


def test_uploads_per_day_count_signed_urls_when_issued_and_multipart_uploads(limit, alice):
    limit("uploads_per_day", 2)
    issued = signed_url(alice)
    assert issued[0] == 200 and rate(issued[2])["uploads_per_day"]["r"] == "1"
    uploaded = multipart(alice, imagefactory.png())
    assert uploaded[0] == 201 and rate(uploaded[2])["uploads_per_day"]["r"] == "0"

    details = refused(signed_url(alice), "uploads_per_day", ("post", "/v1/uploads/signed-url"))
    assert (details["quota"], details["used"]) == (2, 2)
    assert DAY - 5 <= details["retry_after"] <= DAY
    refused(multipart(alice, imagefactory.png()), "uploads_per_day", ("post", "/v1/uploads"))


def test_upload_bytes_per_day_are_limited(limit, alice):
    limit("upload_bytes_per_day", 1000)
    assert signed_url(alice, 600)[0] == 200

    details = refused(
        signed_url(alice, 500), "upload_bytes_per_day", ("post", "/v1/uploads/signed-url")
    )

    assert (details["quota"], details["used"], details["requested"]) == (1000, 600, 500)
    status, _, headers = signed_url(alice, 400)
    assert status == 200 and rate(headers)["upload_bytes_per_day"]["r"] == "0"
    policy = headers["RateLimit-Policy"]
    assert '"upload_bytes_per_day";q=1000;qu="content-bytes";w=86400' in policy


@pytest.mark.parametrize("what", ["jobs", "uploads"])
def test_twenty_concurrent_requests_with_one_slot_left_admit_exactly_one(
    limit, alice, monkeypatch, what
):
    # GIVEN one slot left, and a pool big enough that every request holds a connection at once
    monkeypatch.setenv("DB_POOL_SIZE", "20")
    config.settings.cache_clear()
    db.dispose()
    if what == "jobs":
        limit("active_jobs", 3)
        attempt, admitted = create, 202
    else:
        limit("uploads_per_day", 3)
        attempt, admitted = signed_url, 200
    assert [attempt(alice)[0] for _ in range(2)] == [admitted, admitted]
    start = threading.Barrier(20)

    def race(_: int) -> int:
        start.wait(timeout=30)
        return attempt(alice)[0]

    def connect(_: int) -> int:  # twenty connections open, so that none is made in the race
        start.wait(timeout=30)
        return call_as(alice, "GET", "/v1/me")[0]

    with ThreadPoolExecutor(20) as pool:
        assert set(pool.map(connect, range(20))) == {200}

    # WHEN 20 requests arrive at once
    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(race, range(20)))

    # THEN exactly one is admitted, and the database holds exactly the limit
    assert sorted(statuses) == [admitted] + [429] * 19
    table = "generation_jobs" if what == "jobs" else "upload_tickets"
    with db.transaction() as conn:
        counted = db.one(conn, f"SELECT count(*) AS n FROM {table}")
    assert counted == {"n": 3}


def test_an_override_raises_one_users_limit_and_not_anothers(limit, alice, bob):
    limit("active_jobs", 1)
    sql(
        "INSERT INTO user_limits (user_id, active_jobs, note) VALUES (:id, 3, 'beta tester')",
        id=alice["id"],
    )
    assert [create(alice)[0] for _ in range(3)] == [202, 202, 202]
    refused(create(alice), "active_jobs", ("post", "/v1/generations"))
    assert create(bob)[0] == 202
    refused(create(bob), "active_jobs", ("post", "/v1/generations"))
    assert call_as(alice, "GET", "/v1/me")[1]["limits"]["active_jobs"]["quota"] == 3
    assert call_as(bob, "GET", "/v1/me")[1]["limits"]["active_jobs"]["quota"] == 1


def test_me_shows_each_limit_and_the_usage_of_what_was_done(limit, alice):
    limit("images_per_day", 50)
    create(alice, shots=3)
    _, done, _ = create(alice, shots=2)
    job_events.fail(done["id"], "over", "test")
    signed_url(alice, 1234)
    png = imagefactory.png()
    assert multipart(alice, png)[0] == 201

    status, me, _ = call_as(alice, "GET", "/v1/me")

    assert status == 200 and me["id"] == str(alice["id"]) and me["auth_subject"]
    shown = me["limits"]
    assert shown["active_jobs"] == {
        "quota": 5,
        "used": 1,
        "remaining": 4,
        "window_seconds": None,
        "reset_seconds": None,
    }
    assert {k: shown["images_per_day"][k] for k in ("quota", "used", "remaining")} == {
        "quota": 50,
        "used": 5,
        "remaining": 45,
    }
    assert (shown["uploads_per_day"]["used"], shown["upload_bytes_per_day"]["used"]) == (
        2,
        1234 + len(png),
    )
    for name in ("images_per_day", "uploads_per_day", "upload_bytes_per_day"):
        assert shown[name]["window_seconds"] == DAY
        assert DAY - 10 <= shown[name]["reset_seconds"] <= DAY
