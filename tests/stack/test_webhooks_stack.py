"""Job webhooks end to end on the local stack: the api, plan-generation and render-image publish
to generation-events, the relay pushes it to deliver-webhooks, which POSTs to a receiver on
127.0.0.1 (the stack's one relaxation). Every delivery is verified with `standardwebhooks`."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
import requests

from tests.stack.conftest import Stack
from tools.fixtures.processes import wait_for
from tools.fixtures.webhook_receiver import HANG, Receiver, verified
from tools.pgcluster import query

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("running")]  # after test_stack.py


class Client:
    """One user of the stack's API."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        issuer = stack.env["TOKEN_ISSUER_URL"]
        user = f"hooks-{uuid.uuid4().hex[:8]}"
        self.token = requests.get(f"{issuer}/token", params={"user": user}, timeout=10).json()[
            "token"
        ]

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method,
            f"{self.stack.env['API_URL']}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )

    def create(self, webhook: str, **body: Any) -> dict[str, Any]:
        answer = self.call(
            "POST", "/v1/generations", {"prompt": "a fox", "webhook": webhook, **body}
        )
        assert answer.status_code == 202, answer.text
        return answer.json()

    def finished(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            job = self.call("GET", f"/v1/generations/{job_id}").json()
            return job if job["status"] in ("completed", "failed", "cancelled") else None

        return wait_for(probe, timeout, f"job {job_id} to finish", interval=0.3)

    def attempts(self, job_id: str) -> list[dict[str, Any]]:
        answer = self.call("GET", f"/v1/generations/{job_id}/webhook-deliveries?limit=100")
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]

    def secret(self) -> str:
        return self.call("GET", "/v1/webhook-secret").json()["secret"]


def messages(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    return query(
        stack.env["DATABASE_URL"],
        "SELECT type, status, attempts FROM webhook_messages WHERE job_id = CAST(:id AS uuid)"
        " ORDER BY sequence",
        id=job_id,
    )


def attempts_of(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    """The job's attempts: outcome, when each POST began and when it was recorded (epoch s)."""
    found = query(
        stack.env["DATABASE_URL"],
        "SELECT outcome, EXTRACT(EPOCH FROM created_at) AS at, latency_ms FROM webhook_deliveries"
        " WHERE job_id = CAST(:id AS uuid)",
        id=job_id,
    )
    return [
        {
            "outcome": a["outcome"],
            "recorded": float(a["at"]),
            "began": float(a["at"]) - a["latency_ms"] / 1000,
        }
        for a in found
    ]


@pytest.fixture
def client(stack: Stack) -> Client:
    return Client(stack)


def test_a_three_shot_job_delivers_started_three_images_and_completed(client, receiver):
    job = client.create(receiver.url, number_of_shots=3)
    done = client.finished(job["id"])
    got = receiver.wait(5)
    secret = client.secret()

    payloads = [verified(g, secret) for g in got]
    assert Counter(p["type"] for p in payloads) == {
        "generation.started": 1, "generation.image": 3, "generation.completed": 1,
    }  # fmt: skip
    assert sorted(p["sequence"] for p in payloads) == [1, 2, 3, 4, 5]
    assert sorted(p["image_index"] for p in payloads if p["image_index"]) == [1, 2, 3]
    assert len({g.headers["webhook-id"] for g in got}) == 5
    completed = next(p for p in payloads if p["type"] == "generation.completed")
    assert completed["data"]["id"] == job["id"] and completed["data"]["status"] == "completed"
    assert [i["id"] for i in completed["data"]["images"]] == [i["id"] for i in done["images"]]
    wait_for(lambda: len(client.attempts(job["id"])) == 5, 10, "five attempts listed")
    assert {a["outcome"] for a in client.attempts(job["id"])} == {"delivered"}


def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt(client):
    statuses = [500, 500, 200]
    receiver = Receiver(lambda r: statuses.pop(0) if statuses else 200)
    try:
        job = client.create(receiver.url, webhook_events=["completed"])
        client.finished(job["id"])
        got = receiver.wait(3, timeout=60)
    finally:
        receiver.close()
    secret = client.secret()
    assert len({g.headers["webhook-id"] for g in got}) == 1
    assert [verified(g, secret)["type"] for g in got] == ["generation.completed"] * 3
    listed = client.attempts(job["id"])
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in listed] == [
        (3, "delivered", 200), (2, "retry", 500), (1, "retry", 500),
    ]  # fmt: skip


def test_a_receiver_answering_410_gets_nothing_more_for_the_job(client, stack):
    receiver = Receiver(lambda r: 410)
    try:
        job = client.create(receiver.url, number_of_shots=2)
        client.finished(job["id"])
        settled = wait_for(
            lambda: (
                (found := messages(stack, job["id"]))
                and len(found) == 4
                and all(m["status"] != "pending" for m in found)
                and found
            ),
            30,
            "every webhook message of the job to settle",
        )
    finally:
        receiver.close()
    # THEN no attempt started after the first 410 was recorded: the messages after it were
    # skipped without a request (`started` goes out before any render, so it is the one sent
    # unless an image's attempt was already in flight)
    sent = attempts_of(stack, job["id"])
    stopped_at = min(a["recorded"] for a in sent)
    assert all(a["began"] <= stopped_at + 0.05 for a in sent), sent
    assert len(receiver.received) == len(sent) and {a["outcome"] for a in sent} == {"stopped"}
    assert {m["status"] for m in settled} == {"stopped", "skipped"}
    assert ("generation.completed", "skipped") in {(m["type"], m["status"]) for m in settled}


def test_a_receiver_that_never_answers_delays_nothing_and_its_attempts_are_listed(client, stack):
    receiver = Receiver(lambda r: HANG)
    try:
        job = client.create(receiver.url, number_of_shots=2)
        done = client.finished(job["id"], timeout=30)
        [took] = query(
            stack.env["DATABASE_URL"],
            "SELECT EXTRACT(EPOCH FROM completed_at - created_at) AS took FROM generation_jobs"
            " WHERE id = CAST(:id AS uuid)",
            id=job["id"],
        )
        assert (
            done["status"] == "completed" and float(took["took"]) < 10
        )  # under one webhook timeout
        listed = wait_for(
            lambda: (found := client.attempts(job["id"])) and len(found) >= 4 and found,
            40,
            "the timed-out attempts to be listed",
        )
    finally:
        receiver.close()
    assert {(a["outcome"], a["error"], a["status_code"]) for a in listed} == {
        ("retry", "timeout", None)
    }
    assert all(a["latency_ms"] >= 9_000 for a in listed)
    assert {a["type"] for a in listed} == {
        "generation.started", "generation.image", "generation.completed",
    }  # fmt: skip
