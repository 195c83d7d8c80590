"""Generation jobs end to end on the local stack: the api, Pub/Sub push into plan-generation
and render-image, PostgreSQL, the GCS emulator, and OpenAI as the fake process reached by the
real openai client. Per-job faults ride on prompt markers, so they hold across processes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from google.cloud import pubsub_v1, storage

from shared import vocabulary
from tests.stack.conftest import Stack
from tools.fixtures.generation_stack import GenerationStack
from tools.fixtures.processes import wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def gen(stack: Stack) -> Iterator[GenerationStack]:
    generation = GenerationStack(stack.env)
    try:
        yield generation
    finally:
        generation.restore()


@pytest.fixture
def user(gen: GenerationStack) -> str:
    return gen.token()


def create(gen: GenerationStack, token: str, **body: Any) -> dict[str, Any]:
    answer = gen.api(token, "POST", "/v1/generations", body)
    assert answer.status_code == 202, answer.text
    return answer.json()


def tail(stack: Stack, topic: str, job_id: str, settle: float = 1.5) -> list[dict[str, Any]]:
    """Messages about one job on a topic's pull tail, after `settle` seconds without new ones."""
    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(stack.env["GCP_PROJECT"], f"{topic}-tail")
    found: list[dict[str, Any]] = []
    quiet_since = time.monotonic()
    with subscriber:
        while time.monotonic() - quiet_since < settle:
            answer = subscriber.pull(subscription=path, max_messages=100, timeout=5)
            mine = [m for m in answer.received_messages if str(job_id) in m.message.data.decode()]
            if mine:
                subscriber.acknowledge(subscription=path, ack_ids=[m.ack_id for m in mine])
                found += [json.loads(m.message.data) for m in mine]
                quiet_since = time.monotonic()
            time.sleep(0.2)
    return found


def objects(stack: Stack, job_id: str) -> list[str]:
    client = storage.Client(project=stack.env["GCP_PROJECT"])
    names = [b.name for b in client.list_blobs(stack.env["BUCKET_NAME"])]
    return sorted(n for n in names if f"generated/{job_id}/" in n)


def test_an_openai_job_completes_with_one_image_per_shot_and_one_event(gen, stack, user):
    prompt = f"a fox in the snow {uuid.uuid4().hex[:6]}"
    job = create(gen, user, prompt=prompt, number_of_shots=3, aspect_ratio="16:9")

    done = gen.finished(user, job["id"])

    assert done["status"] == "completed" and done["progress"] == {"done": 3, "total": 3}
    assert done["generation_method"] == "openai" and done["model_used"].startswith("gpt-image")
    assert {(i["width"], i["height"]) for i in done["images"]} == {(1536, 864)}
    assert len(objects(stack, job["id"])) == 6  # images and thumbnails
    assert [e["status"] for e in tail(stack, "generation-events", job["id"])] == ["completed"]
    calls = [
        r for r in gen.fake_control("requests")["requests"] if prompt in (r.get("prompt") or "")
    ]
    assert (
        sorted(c["path"] for c in calls)
        == ["/v1/chat/completions"] + ["/v1/images/generations"] * 3
    )
    moderated = [
        r for r in gen.fake_control("requests")["requests"] if prompt in str(r.get("input"))
    ]
    assert len(moderated) == 2  # the request's texts, then the enhanced prompt


def test_a_flagged_prompt_fails_the_job_before_any_paid_call(gen, stack, user):
    prompt = f"a duel [fake:flag=violence] {uuid.uuid4().hex[:6]}"
    job = create(gen, user, prompt=prompt, number_of_shots=2)

    done = gen.finished(user, job["id"])

    assert (done["status"], done["error_code"]) == ("failed", "content_policy")
    assert "violence" in done["error_message"] and done["images"] == []
    calls = [r for r in gen.fake_control("requests")["requests"] if prompt in str(r)]
    assert [c["path"] for c in calls] == ["/v1/moderations"]
    assert [e["status"] for e in tail(stack, "generation-events", job["id"])] == ["failed"]


def test_reference_images_condition_every_shot_through_the_edit_endpoint(gen, stack, user):
    from tools.fixtures import images as imagefactory

    uploaded = requests.post(
        f"{gen.api_url}/v1/uploads",
        files={"file": ("ref.png", imagefactory.png(3000, 2000), "image/png")},
        headers={"Authorization": f"Bearer {user}"},
        timeout=30,
    )
    assert uploaded.status_code == 201, uploaded.text
    prompt = f"a fox with my cat {uuid.uuid4().hex[:6]}"
    job = create(
        gen, user, prompt=prompt, number_of_shots=2, reference_image_ids=[uploaded.json()["id"]]
    )

    done = gen.finished(user, job["id"])

    assert done["status"] == "completed", done["error_message"]
    assert len(done["reference_image_urls"]) == 1
    calls = [
        r for r in gen.fake_control("requests")["requests"] if prompt in (r.get("prompt") or "")
    ]
    edits = [c for c in calls if c["path"] == "/v1/images/edits"]
    assert len(edits) == 2
    # the reference's working copy: an opaque PNG of 3000x2000 reaches the model as a 2048 JPEG
    assert {(e["reference_content_types"][0], tuple(e["reference_sizes"][0])) for e in edits} == {
        ("image/jpeg", (2048, 1365))
    }


def test_an_image_outage_renders_the_fallback(gen, stack, user):
    job = create(gen, user, prompt="a fox [fake:500]", number_of_shots=2)
    done = gen.finished(user, job["id"])
    assert done["status"] == "completed"
    assert (done["generation_method"], done["model_used"]) == ("fallback", "pillow-fallback")
    assert len(objects(stack, job["id"])) == 4


def test_a_content_policy_refusal_fails_the_job_with_one_event(gen, stack, user):
    job = create(gen, user, prompt="something [fake:moderation]", number_of_shots=3)
    done = gen.finished(user, job["id"])
    assert done["status"] == "failed" and "content policy" in done["error_message"]
    assert done["images"] == [] and objects(stack, job["id"]) == []
    assert [e["status"] for e in tail(stack, "generation-events", job["id"])] == ["failed"]


def test_duplicate_and_concurrent_deliveries_make_exactly_one_image_per_shot(gen, stack, user):
    # GIVEN a second push subscription on each generation topic: every message arrives twice,
    # concurrently, and the plan message is published once more on top
    project = stack.env["GCP_PROJECT"]
    subscriber = pubsub_v1.SubscriberClient()
    publisher = pubsub_v1.PublisherClient()
    doubles = []
    for topic, function in (
        ("generation-requests", "PLAN_GENERATION"),
        ("render-requests", "RENDER_IMAGE"),
    ):
        path = subscriber.subscription_path(project, f"{topic}-double-{uuid.uuid4().hex[:6]}")
        subscriber.create_subscription(
            request={
                "name": path,
                "topic": publisher.topic_path(project, topic),
                "push_config": {"push_endpoint": stack.env[f"FUNCTION_URL_{function}"]},
                "ack_deadline_seconds": 60,
            }
        )
        doubles.append(path)
    try:
        job = create(gen, user, prompt="a fox [fake:slow=0.5]", number_of_shots=4)
        publisher.publish(
            publisher.topic_path(project, "generation-requests"),
            f'{{"job_id": "{job["id"]}"}}'.encode(),
        ).result(timeout=10)

        done = gen.finished(user, job["id"])
    finally:
        for path in doubles:
            subscriber.delete_subscription(subscription=path)

    # THEN each shot has one row and one object, and the job finished once
    assert done["status"] == "completed"
    assert sorted(i["generation_index"] for i in done["images"]) == [1, 2, 3, 4]
    assert len(objects(stack, job["id"])) == 8
    assert [e["status"] for e in tail(stack, "generation-events", job["id"])] == ["completed"]


def _render_workers(stack: Stack) -> list[int]:
    """The gunicorn workers serving render-image (the children of the recorded master)."""
    master = json.loads(stack.config.pid_file("render-image").read_text())["pid"]
    workers = [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == master]
    assert workers
    return workers


def _ppid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_a_render_killed_mid_shot_recovers_on_redelivery(gen, stack, user):
    job = create(gen, user, prompt="a slow fox [fake:slow=4]", number_of_shots=1)
    wait_for(
        lambda: gen.sql(
            "SELECT 1 FROM generation_jobs WHERE id = CAST(:id AS uuid) AND leases ? '1'",
            id=job["id"],
        ),
        30,
        "the shot to be claimed",
    )
    for worker in _render_workers(stack):  # the instance dies; gunicorn starts new workers
        os.kill(worker, signal.SIGKILL)

    done = gen.finished(user, job["id"], timeout=90)

    assert done["status"] == "completed" and len(done["images"]) == 1
    assert len(objects(stack, job["id"])) == 2


def test_a_render_instance_killed_outright_recovers_by_redelivery_within_a_minute(gen, stack, user):
    """kill -9 of every process of render-image mid-job, then `up`: the shots in flight come back
    by redelivery (not by the sweeper) once their leases lapse, one image per shot, no stray
    object."""
    shots = 3
    job = create(gen, user, prompt="a slow fox [fake:slow=3]", number_of_shots=shots)
    wait_for(
        lambda: gen.sql(
            "SELECT 1 FROM generation_jobs WHERE id = CAST(:id AS uuid) AND leases ?& :keys",
            id=job["id"],
            keys=[str(i) for i in range(1, shots + 1)],
        ),
        30,
        "every shot to be claimed",
    )
    os.killpg(json.loads(stack.config.pid_file("render-image").read_text())["pid"], signal.SIGKILL)

    gen.heal()  # returns once render-image answers again
    answered = time.monotonic()
    done = gen.finished(user, job["id"], timeout=60)

    print(f"completed {time.monotonic() - answered:.1f} s after render-image answered again")
    assert done["status"] == "completed" and len(done["images"]) == shots
    assert len(objects(stack, job["id"])) == 2 * shots  # each image and its thumbnail, no more
    redrives = gen.sql(
        "SELECT redrives FROM generation_jobs WHERE id = CAST(:id AS uuid)", id=job["id"]
    )
    assert redrives == [{"redrives": 0}]


def test_every_shot_of_a_job_renders_at_once(gen, user):
    """render-image takes as many deliveries at once as the manifest gives it instances: the ten
    model calls of a ten-shot job all start before the first one ends."""
    marker, latency = uuid.uuid4().hex, 5
    job = create(gen, user, prompt=f"a fox {marker} [fake:slow={latency}]", number_of_shots=10)
    assert gen.finished(user, job["id"], timeout=60)["status"] == "completed"

    calls = [
        r
        for r in gen.fake_control("requests")["requests"]
        if r["path"] == "/v1/images/generations" and marker in (r.get("prompt") or "")
    ]
    starts = sorted(r["time"] for r in calls)
    assert len(starts) == 10 and starts[-1] - starts[0] < latency


def test_cancel_mid_job_renders_nothing_more(gen, stack, user):
    marker, offset = uuid.uuid4().hex, stack.log_size("render-image")
    job = create(gen, user, prompt=f"a fox {marker} [fake:slow=2]", number_of_shots=4)
    wait_for(
        lambda: gen.sql(
            "SELECT 1 FROM generation_jobs WHERE id = CAST(:id AS uuid) AND dispatched_at IS NOT NULL",
            id=job["id"],
        ),
        30,
        "the job to be planned",
    )
    cancelled = gen.api(user, "POST", f"/v1/generations/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    time.sleep(3)  # past a model call: every shot claimed before the cancel has called the model

    def in_flight_ended() -> bool:
        """Every model call of the job answered, and as many shots discarded since."""
        calls = [
            r
            for r in gen.fake_control("requests")["requests"]
            if r["path"] == "/v1/images/generations" and marker in (r.get("prompt") or "")
        ]
        with stack.config.log("render-image").open("rb") as log:
            log.seek(offset)
            discarded = log.read().count(b'"action": "render.discarded"')
        return all(r["status"] for r in calls) and discarded >= len(calls)

    wait_for(in_flight_ended, 60, "the shots in flight to discard what they wrote")
    final = gen.api(user, "GET", f"/v1/generations/{job['id']}").json()
    assert final["status"] == "cancelled" and final["images"] == []
    assert objects(stack, job["id"]) == []
    assert [e["status"] for e in tail(stack, "generation-events", job["id"])] == ["cancelled"]
    assert gen.api(user, "POST", f"/v1/generations/{job['id']}/cancel").status_code == 409


def test_an_idempotency_key_replays_and_refuses_another_body(gen, user):
    key = {"Idempotency-Key": f"key-{uuid.uuid4().hex}"}
    body = {"prompt": "a fox", "style": "anime"}
    results: list[Any] = []

    def post() -> None:
        results.append(gen.api(user, "POST", "/v1/generations", body, key))

    threads = [threading.Thread(target=post) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert {r.status_code for r in results} == {202}
    assert len({r.json()["id"] for r in results}) == 1
    other = gen.api(user, "POST", "/v1/generations", {**body, "style": "sketch"}, key)
    assert other.status_code == 409


def test_an_outage_beyond_the_last_attempt_is_dead_lettered_and_the_job_fails(gen, stack, user):
    gen.configure(OPENAI_FALLBACK_ON_ERROR="false")
    try:
        job = create(gen, user, prompt="a fox [fake:500]", number_of_shots=1)
        dead = wait_for(
            lambda: tail(stack, "render-requests-dead", job["id"], settle=0.5), 90, "a dead letter"
        )
        assert dead[0] == {"job_id": job["id"], "index": 1}
        _sweep(stack, JOB_MAX_REDRIVES="0")
        done = gen.finished(user, job["id"], timeout=10)
    finally:
        gen.configure()
    assert done["status"] == "failed" and "no progress" in done["error_message"]
    assert [e["status"] for e in tail(stack, "generation-events", job["id"])] == ["failed"]


def _sweep(stack: Stack, **settings: str) -> dict[str, Any]:
    """One sweep in this process, against the stack, without waiting for a stall period
    (it sweeps every quiet unfinished job of the stack, not only this module's)."""
    from shared import db
    from shared.generation import sweeper
    from tools.fixtures.cloud import reset_clients

    names = ("DATABASE_URL", "GCP_PROJECT", "BUCKET_NAME", "PUBSUB_EMULATOR_HOST")
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in {**{n: stack.env[n] for n in names}, **settings}.items():
                patch.setenv(name, value)
            reset_clients()
            db.dispose()
            return sweeper.sweep_jobs(stall_seconds=0)
    finally:
        db.dispose()
        reset_clients()


def test_the_statuses_python_knows_are_the_schemas(gen):
    (check,) = gen.sql(
        "SELECT pg_get_constraintdef(oid) AS text FROM pg_constraint WHERE conname = 'generation_jobs_status_check'"
    )
    allowed = {part.split("'")[1] for part in check["text"].split("ARRAY[")[1].split(",")}
    assert allowed == set(vocabulary.JOB_STATUSES)
    assert set(vocabulary.FINISHED_STATUSES) < allowed


def test_a_limit_is_answered_429_with_its_headers_through_the_function(gen, user):
    me = gen.api(user, "GET", "/v1/me").json()
    gen.sql(
        "INSERT INTO user_limits (user_id, images_per_day) VALUES (CAST(:id AS uuid), 2)",
        id=me["id"],
    )
    assert gen.api(user, "POST", "/v1/generations", {"prompt": "a", "number_of_shots": 2}).ok

    refused = gen.api(user, "POST", "/v1/generations", {"prompt": "b"})

    assert refused.status_code == 429
    assert refused.json()["error"]["details"]["limit"] == "images_per_day"
    assert 0 < int(refused.headers["Retry-After"]) <= 86400
    assert '"images_per_day";q=2;w=86400' in refused.headers["RateLimit-Policy"]
    assert '"images_per_day";r=0' in refused.headers["RateLimit"]
    shown = gen.api(user, "GET", "/v1/me").json()["limits"]["images_per_day"]
    assert (shown["quota"], shown["used"]) == (2, 2)
