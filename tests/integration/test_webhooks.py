"""Job webhooks on a real PostgreSQL with the emulators: the request fields, the secret routes,
the events the pipeline publishes, and deliver_webhooks against a receiver on 127.0.0.1
(verified with the `standardwebhooks` package). Responses are checked against the document."""

from __future__ import annotations

import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jsonschema_rs
import pytest

from shared import config, db
from shared.errors import AppError, Transient
from shared.events import PubSubMessage
from shared.generation import job_events, planning, rendering
from shared.queries import webhooks
from shared.webhooks import delivery
from tests.apikit import DOCUMENT, call_as
from tools.fixtures.webhook_receiver import HANG, Receiver, verified

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "https://8.8.8.8/hooks"  # a literal address: no DNS needed, and never called


@pytest.fixture(autouse=True)
def loopback_webhooks(monkeypatch):
    """Webhooks may go to http://127.0.0.1 (the receiver), as on the local stack."""
    monkeypatch.setenv("WEBHOOK_ALLOW_LOOPBACK_HTTP", "true")
    config.settings.cache_clear()


def job_with(user: dict[str, Any], webhook: str, **fields: Any) -> dict[str, Any]:
    status, job, _ = call_as(
        user, "POST", "/v1/generations", {"prompt": "a fox", "webhook": webhook, **fields}
    )
    assert status == 202, job
    return job


def secret_of(user: dict[str, Any]) -> str:
    return call_as(user, "GET", "/v1/webhook-secret")[1]["secret"]


def started(job_id: Any) -> delivery.Event:
    with db.transaction() as conn:
        row = db.one(conn, "SELECT started_at FROM generation_jobs WHERE id = :id", {"id": job_id})
    message = {"event": "started", "job_id": str(job_id), "started_at": row["started_at"]}
    return delivery.event_of(PubSubMessage("m", json.loads(json.dumps(message, default=str))))


def start(job: dict[str, Any]) -> None:
    with db.transaction() as conn:
        db.execute(
            conn,
            "UPDATE generation_jobs SET status = 'processing', started_at = now() WHERE id = :id",
            {"id": job["id"]},
        )


def attempts(user: dict[str, Any], job: dict[str, Any]) -> list[dict[str, Any]]:
    status, page, _ = call_as(user, "GET", f"/v1/generations/{job['id']}/webhook-deliveries")
    assert status == 200
    return page["items"]


# ---- Asking for it --------------------------------------------------------------------------


def test_a_job_stores_and_shows_its_webhook_and_events(cloud, alice):
    job = job_with(alice, PUBLIC, webhook_events=["completed", "started", "completed"])
    assert (job["webhook"], job["webhook_events"]) == (PUBLIC, ["started", "completed"])
    shown = call_as(alice, "GET", f"/v1/generations/{job['id']}")[1]
    assert (shown["webhook"], shown["webhook_events"]) == (PUBLIC, ["started", "completed"])
    assert job_with(alice, PUBLIC)["webhook_events"] == ["started", "image", "completed"]
    plain = call_as(alice, "POST", "/v1/generations", {"prompt": "a fox"})[1]
    assert (plain["webhook"], plain["webhook_events"]) == (None, None)
    status, body, _ = call_as(
        alice, "POST", "/v1/generations", {"prompt": "a fox", "webhook_events": ["image"]}
    )
    assert status == 400 and "needs a webhook" in json.dumps(body)


@pytest.mark.parametrize(
    "webhook",
    [
        "https://8.8.8.8/" + "h" * (2000 - len("https://8.8.8.8/") + 1),  # 2,001 characters
        "/hooks",
        "ftp://8.8.8.8/hooks",
        "",
    ],
)
def test_a_webhook_must_be_an_absolute_url_of_at_most_2000_characters(cloud, alice, webhook):
    status, body, _ = call_as(
        alice, "POST", "/v1/generations", {"prompt": "a fox", "webhook": webhook}
    )
    assert status == 400, body
    longest = "https://8.8.8.8/" + "h" * (2000 - len("https://8.8.8.8/"))
    assert job_with(alice, longest)["webhook"] == longest


def test_the_webhook_is_part_of_the_idempotency_fingerprint(cloud, alice):
    key = {"Idempotency-Key": "hook-1"}
    body = {"prompt": "a fox", "webhook": PUBLIC, "webhook_events": ["image", "started"]}
    first = call_as(alice, "POST", "/v1/generations", body, headers=key)
    reordered = call_as(
        alice,
        "POST",
        "/v1/generations",
        {**body, "webhook_events": ["started", "image"]},
        headers=key,
    )
    assert first[0] == reordered[0] == 202 and reordered[2]["Idempotent-Replayed"] == "true"
    for other in (
        {"webhook": "https://8.8.4.4/hooks"},
        {"webhook_events": ["image"]},
        {"webhook": None, "webhook_events": None},
    ):
        status, answer, _ = call_as(
            alice, "POST", "/v1/generations", {**body, **other}, headers=key
        )
        assert status == 409 and answer["error"]["code"] == "idempotency_key_reused", other


@pytest.mark.parametrize(
    ("webhook", "reason"),
    [
        ("http://8.8.8.8/hooks", "scheme"),
        ("https://8.8.8.8:8080/hooks", "port"),
        ("https://169.254.169.254/computeMetadata/v1/", "link-local"),
        ("https://0251.0376.0251.0376/", "link-local"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("https://2130706433/", "loopback"),
        ("https://100.64.0.1/", "carrier-grade NAT"),
        ("http://127.0.0.1:8080/hooks", "scheme"),  # the local relaxation is off here
    ],
)
def test_a_webhook_that_could_reach_inside_is_refused(cloud, alice, monkeypatch, webhook, reason):
    monkeypatch.setenv("WEBHOOK_ALLOW_LOOPBACK_HTTP", "false")
    config.settings.cache_clear()
    status, body, _ = call_as(
        alice, "POST", "/v1/generations", {"prompt": "a fox", "webhook": webhook}
    )
    assert status == 400 and body["error"]["code"] == "webhook_refused"
    assert body["error"]["details"] == {"field": "webhook", "reason": reason}
    with db.transaction() as conn:
        assert db.one(conn, "SELECT count(*) AS n FROM generation_jobs")["n"] == 0


def test_the_deliveries_are_listed_to_the_jobs_owner_only(cloud, alice, bob):
    job = job_with(alice, PUBLIC)
    assert attempts(alice, job) == []
    status, body, _ = call_as(bob, "GET", f"/v1/generations/{job['id']}/webhook-deliveries")
    assert status == 404 and body["error"]["code"] == "not_found"


# ---- The secret -----------------------------------------------------------------------------


def test_the_secret_is_made_on_first_use_and_rotation_keeps_the_old_one_a_day(cloud, alice):
    status, first, _ = call_as(alice, "GET", "/v1/webhook-secret")
    assert status == 200 and first["secret"].startswith("whsec_")
    assert len(base64.b64decode(first["secret"].removeprefix("whsec_"))) == 32
    assert first["previous_secret_expires_at"] is None
    assert call_as(alice, "GET", "/v1/webhook-secret")[1]["secret"] == first["secret"]

    status, rotated, _ = call_as(alice, "POST", "/v1/webhook-secret/rotate")
    assert status == 200 and rotated["secret"] != first["secret"]
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert abs(expires - datetime.now(UTC) - timedelta(hours=24)) < timedelta(minutes=1)
    assert call_as(alice, "GET", "/v1/webhook-secret")[1]["secret"] == rotated["secret"]
    with db.transaction() as conn:
        secrets = webhooks.signing_secrets(conn, user_id=alice["id"])
    assert secrets == [rotated["secret"], first["secret"]]


def test_concurrent_first_uses_make_one_secret(cloud, alice):
    with ThreadPoolExecutor(4) as pool:
        found = set(pool.map(lambda _: secret_of(alice), range(8)))
    assert len(found) == 1


# ---- Delivering -----------------------------------------------------------------------------


def test_a_delivery_is_signed_and_carries_the_job(cloud, alice, receiver):
    job = job_with(alice, receiver.url)
    start(job)
    delivery.deliver(started(job["id"]))

    (got,) = receiver.wait(1)
    payload = verified(got, secret_of(alice))
    assert payload["type"] == "generation.started" and payload["sequence"] == 1
    assert payload["data"]["id"] == job["id"] and payload["data"]["status"] == "processing"
    assert payload["image_index"] is None
    assert got.headers["webhook-id"].startswith("msg_") and len(got.headers["webhook-id"]) == 36
    assert got.headers["user-agent"].startswith("ImageGen-Webhooks/")
    assert got.headers["content-type"] == "application/json"
    (attempt,) = attempts(alice, job)
    assert (attempt["webhook_id"], attempt["outcome"], attempt["status_code"]) == (
        got.headers["webhook-id"], "delivered", 204,
    )  # fmt: skip

    delivery.deliver(started(job["id"]))  # a duplicate of the event
    time.sleep(0.2)
    assert len(receiver.received) == 1 and len(attempts(alice, job)) == 1


def test_a_failing_receiver_is_retried_with_the_same_id(cloud, alice):
    statuses = [500, 429, 408, 200]
    receiver = Receiver(lambda r: statuses.pop(0))
    try:
        job = job_with(alice, receiver.url)
        start(job)
        for _ in range(3):
            with pytest.raises(Transient):
                delivery.deliver(started(job["id"]))
        delivery.deliver(started(job["id"]))
        got = receiver.wait(4)
    finally:
        receiver.close()
    assert len({g.headers["webhook-id"] for g in got}) == 1
    secret = secret_of(alice)
    assert [verified(g, secret)["sequence"] for g in got] == [1, 1, 1, 1]
    listed = attempts(alice, job)
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in listed] == [
        (4, "delivered", 200), (3, "retry", 408), (2, "retry", 429), (1, "retry", 500),
    ]  # fmt: skip
    assert {a["message_status"] for a in listed} == {"delivered"}


def test_410_stops_the_jobs_deliveries_and_another_4xx_fails_one(cloud, alice):
    answers = {"generation.started": 410}
    receiver = Receiver(lambda r: answers.get(r.payload()["type"], 400))
    try:
        job = job_with(alice, receiver.url)
        other = job_with(alice, receiver.url)
        for j in (job, other):
            start(j)
        delivery.deliver(started(job["id"]))
        answers["generation.started"] = 400
        delivery.deliver(started(other["id"]))
        for j in (job, other):
            assert job_events.fail(j["id"], "stopped by the test", "test")
            (event,) = cloud.messages("generation-events", j["id"], at_least=1)
            delivery.deliver(delivery.event_of(PubSubMessage("m", event)))
        received = receiver.wait(3)
    finally:
        receiver.close()
    assert [g.payload()["data"]["id"] for g in received].count(job["id"]) == 1
    assert [(a["outcome"], a["message_status"]) for a in attempts(alice, job)] == [
        ("stopped", "stopped")
    ]
    with db.transaction() as conn:
        statuses = db.rows(
            conn,
            "SELECT type, status FROM webhook_messages WHERE job_id = :id ORDER BY sequence",
            {"id": job["id"]},
        )
    assert statuses == [
        {"type": "generation.started", "status": "stopped"},
        {"type": "generation.completed", "status": "skipped"},
    ]
    assert [a["outcome"] for a in attempts(alice, other)] == ["failed", "failed"]


def test_a_receiver_that_never_answers_times_out_and_is_retried(cloud, alice, monkeypatch):
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.5)
    receiver = Receiver(lambda r: HANG)
    try:
        job = job_with(alice, receiver.url)
        start(job)
        with pytest.raises(Transient):
            delivery.deliver(started(job["id"]))
    finally:
        receiver.close()
    ((attempt),) = attempts(alice, job)
    assert (attempt["outcome"], attempt["error"], attempt["status_code"]) == (
        "retry",
        "timeout",
        None,
    )
    assert 400 <= attempt["latency_ms"] < 2000


def test_after_a_rotation_both_secrets_verify(cloud, alice, receiver):
    old = secret_of(alice)
    new = call_as(alice, "POST", "/v1/webhook-secret/rotate")[1]["secret"]
    job = job_with(alice, receiver.url)
    start(job)
    delivery.deliver(started(job["id"]))
    (got,) = receiver.wait(1)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    verified(got, old, new)


def test_concurrent_deliveries_of_one_event_post_once(cloud, alice):
    receiver = Receiver(lambda r: (time.sleep(0.5), 204)[1])
    try:
        job = job_with(alice, receiver.url)
        start(job)
        event = started(job["id"])

        def attempt(_: int) -> str:
            try:
                delivery.deliver(event)
                return "done"
            except Transient as error:
                return error.code

        with ThreadPoolExecutor(3) as pool:
            outcomes = sorted(pool.map(attempt, range(3)))
    finally:
        receiver.close()
    assert len(receiver.received) == 1
    assert outcomes == ["claimed", "claimed", "done"]


def test_events_the_job_did_not_ask_for_are_not_sent(cloud, alice, receiver):
    job = job_with(alice, receiver.url, webhook_events=["completed"])
    plain = call_as(alice, "POST", "/v1/generations", {"prompt": "a fox"})[1]
    for j in (job, plain):
        start(j)
        delivery.deliver(started(j["id"]))
    time.sleep(0.2)
    assert receiver.received == []
    with db.transaction() as conn:
        assert db.one(conn, "SELECT count(*) AS n FROM webhook_messages")["n"] == 0


# ---- The pipeline's events ------------------------------------------------------------------


def test_a_job_delivers_started_each_image_and_completed_in_sequence(cloud, alice, receiver):
    job = job_with(alice, receiver.url, number_of_shots=2)
    planning.plan(job["id"])
    for index in (2, 1):
        rendering.render_shot(job["id"], index)
    rendering.render_shot(job["id"], 2)  # a redelivery announces its image again
    events = cloud.messages("generation-events", job["id"], at_least=5)
    assert [e["event"] for e in events] == ["started", "image", "image", "finished", "image"]
    for event in events:
        delivery.deliver(delivery.event_of(PubSubMessage("m", event)))

    payloads = [verified(g, secret_of(alice)) for g in receiver.wait(4)]
    documented = DOCUMENT["webhooks"]["generation-event"]["post"]["requestBody"]["content"]
    schema = {**documented["application/json"]["schema"], "components": DOCUMENT["components"]}
    for payload in payloads:
        jsonschema_rs.validate(schema, payload)
    assert [(p["type"], p["sequence"], p["image_index"]) for p in payloads] == [
        ("generation.started", 1, None),
        ("generation.image", 2, 2),
        ("generation.image", 3, 1),
        ("generation.completed", 4, None),
    ]
    last = payloads[-1]["data"]
    assert last["status"] == "completed" and len(last["images"]) == 2
    assert all("X-Goog-Signature" in image["url"] for image in last["images"])
    plain = call_as(alice, "POST", "/v1/generations", {"prompt": "a fox"})[1]
    planning.plan(plain["id"])
    rendering.render_shot(plain["id"], 1)
    assert [e["event"] for e in cloud.messages("generation-events", plain["id"], at_least=1)] == [
        "finished"
    ]


def test_the_deliverers_database_role_writes_only_delivery_records(
    cloud, alice, receiver, database, monkeypatch
):
    # GIVEN db/roles.sql applied and a login in the deliverer's role (as its IAM user would be)
    login, password = f"deliverer_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with db.raw_connection() as raw:
        raw.execute_simple((ROOT / "db" / "roles.sql").read_text())
        raw.execute_simple(f"CREATE ROLE {login} LOGIN PASSWORD '{password}' IN ROLE app_webhooks")
    job = job_with(alice, receiver.url)
    start(job)
    secret = secret_of(alice)
    event = started(job["id"])
    try:
        # WHEN deliver_webhooks runs as that login
        parts = urlsplit(database)
        as_deliverer = parts._replace(netloc=f"{login}:{password}@{parts.hostname}:{parts.port}")
        monkeypatch.setenv("DATABASE_URL", urlunsplit(as_deliverer))
        config.settings.cache_clear()
        db.dispose()
        delivery.deliver(event)
        # THEN it delivers, and may not change a job or a secret
        for statement in (
            "UPDATE generation_jobs SET prompt = 'changed' WHERE id = :id",
            "UPDATE webhook_secrets SET secret = 'whsec_x' WHERE user_id = :id",
        ):
            with pytest.raises(AppError) as caught, db.transaction() as conn:
                db.execute(conn, statement, {"id": job["id"]})
            assert caught.value.__cause__.args[0]["C"] == "42501"  # insufficient_privilege
    finally:
        db.dispose()
        monkeypatch.setenv("DATABASE_URL", database)
        config.settings.cache_clear()
        with db.raw_connection() as raw:
            raw.execute_simple(f"DROP ROLE {login}")
    (got,) = receiver.wait(1)
    assert verified(got, secret)["type"] == "generation.started"
