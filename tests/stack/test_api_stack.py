"""The `api` and `purge_objects` functions on the running local stack: real tokens from the
stack's issuer, real Pub/Sub and GCS emulators, and a PostgreSQL restart in the middle of a run
of requests."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1, storage

from shared import config, db
from tests.integration import factories as make
from tests.stack.conftest import Stack
from tools.stack.services import cluster

pytestmark = pytest.mark.stack
TIMEOUT = 10


@pytest.fixture(scope="module")
def api_url(stack: Stack) -> str:
    return stack.env["API_URL"]


@pytest.fixture(scope="module")
def token(stack: Stack) -> Callable[[str], str]:
    def mint(user: str) -> str:
        response = requests.get(
            f"{stack.env['TOKEN_ISSUER_URL']}/token", params={"user": user}, timeout=TIMEOUT
        )
        response.raise_for_status()
        return str(response.json()["token"])

    return mint


@pytest.fixture(scope="module")
def bucket(stack: Stack) -> storage.Bucket:
    client = storage.Client(project=stack.config.project, credentials=AnonymousCredentials())
    return client.bucket(stack.config.bucket)


@pytest.fixture
def stack_db(stack: Stack) -> Iterator[None]:
    """This process's shared.db pointed at the stack's database (to seed rows)."""
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "BUCKET_NAME", "GCP_PROJECT")}
    os.environ.update(
        DATABASE_URL=stack.env["DATABASE_URL"],
        BUCKET_NAME=stack.config.bucket,
        GCP_PROJECT=stack.config.project,
    )
    config.settings.cache_clear()
    db.dispose()
    try:
        yield
    finally:
        db.dispose()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        config.settings.cache_clear()


class Client:
    """One user's view of the API."""

    def __init__(self, api_url: str, bearer: str) -> None:
        self.base = api_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {bearer}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=TIMEOUT, **kwargs)


def seed_images(user: dict, session_id: str, bucket: storage.Bucket, shots: int = 2) -> list[dict]:
    """A completed job with `shots` images (and thumbnails), in the database and in the bucket,
    with the generations written."""
    with db.transaction() as conn:
        session = db.one(conn, "SELECT * FROM sessions WHERE id = :id", {"id": session_id})
        job = make.job(conn, user, session, number_of_shots=shots)
        images = [make.image(conn, job, i) for i in range(1, shots + 1)]
        for image in images:
            name = image["gcp_bucket_path"].split("/", 1)[1]
            thumb = f"thumbnails/{name}"
            written = bucket.blob(name)
            written.upload_from_string(b"jpeg", content_type="image/jpeg")
            small = bucket.blob(thumb)
            small.upload_from_string(b"jpeg", content_type="image/jpeg")
            db.execute(
                conn,
                "UPDATE generated_images SET thumbnail_url = :t, object_generation = :g,"
                " thumbnail_generation = :tg WHERE id = :id",
                {
                    "t": f"https://storage.googleapis.com/{bucket.name}/{thumb}",
                    "g": written.generation,
                    "tg": small.generation,
                    "id": image["id"],
                },
            )
        db.execute(
            conn,
            "UPDATE generation_jobs SET status = 'completed' WHERE id = :id",
            {"id": job["id"]},
        )
    return images


def objects_of(images: list[dict]) -> list[str]:
    names = [i["gcp_bucket_path"].split("/", 1)[1] for i in images]
    return names + [f"thumbnails/{n}" for n in names]


def wait_gone(bucket: storage.Bucket, names: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    left = names
    while time.monotonic() < deadline:
        left = [n for n in left if bucket.blob(n).exists()]
        if not left:
            return
        time.sleep(0.5)
    raise AssertionError(f"still in the bucket after {timeout}s: {left}")


def test_session_flow_with_signed_urls_and_deletes_that_purge_objects(
    api_url, token, bucket, stack_db
):
    alice = Client(api_url, token(f"alice-{uuid.uuid4().hex[:6]}"))
    me = alice("GET", "/v1/me").json()
    session = alice("POST", "/v1/sessions", json={"title": "Lighthouse"}).json()
    images = seed_images(me, session["id"], bucket, shots=3)

    listed = alice("GET", "/v1/sessions?limit=5").json()["items"]
    assert listed[0]["id"] == session["id"] and listed[0]["generated_count"] == 3
    thumbnail = requests.get(listed[0]["thumbnail_url"], timeout=TIMEOUT)
    assert thumbnail.status_code == 200 and thumbnail.content == b"jpeg"
    gallery = alice("GET", f"/v1/sessions/{session['id']}/images?limit=2").json()
    assert [i["generation_index"] for i in gallery["items"]] == [1, 2] and gallery["next_cursor"]
    assert requests.get(gallery["items"][0]["url"], timeout=TIMEOUT).content == b"jpeg"

    # One image: the count follows, its objects go.
    assert alice("DELETE", f"/v1/images/{images[0]['id']}").status_code == 204
    wait_gone(bucket, objects_of(images[:1]))
    after = alice("GET", f"/v1/sessions/{session['id']}").json()
    assert after["generated_count"] == 2
    assert after["thumbnail_image_id"] in {str(i["id"]) for i in images[1:]}  # re-picked

    # The session with everything in it.
    assert alice("DELETE", f"/v1/sessions/{session['id']}").status_code == 204
    wait_gone(bucket, objects_of(images[1:]))
    assert alice("GET", f"/v1/sessions/{session['id']}").status_code == 404
    with db.transaction() as conn:
        assert db.one(conn, "SELECT count(*) AS n FROM pending_object_deletions")["n"] == 0


def test_an_unpublished_outbox_row_is_republished_by_maintenance(stack, bucket, stack_db):
    # GIVEN deletions whose publisher died after commit (the row's hold has passed)
    name = f"generated/{uuid.uuid4()}/1_x.jpg"
    bucket.blob(name).upload_from_string(b"jpeg", content_type="image/jpeg")
    with db.transaction() as conn:
        row = db.one(
            conn,
            "INSERT INTO pending_object_deletions (object_names, reason, publish_after)"
            " VALUES (CAST(:n AS text[]), 'test', now() - interval '1 minute') RETURNING id",
            {"n": [name]},
        )
    # WHEN the scheduled maintenance task runs
    publisher = pubsub_v1.PublisherClient()
    try:
        path = publisher.topic_path(stack.config.project, "maintenance")
        body = json.dumps({"task": "republish_deletions"}).encode()
        publisher.publish(path, body).result(timeout=TIMEOUT)
    finally:
        publisher.transport.close()
    # THEN the objects go and the row with them (the purge removes it after the objects)
    wait_gone(bucket, [name])
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with db.transaction() as conn:
            left = db.rows(
                conn, "SELECT 1 FROM pending_object_deletions WHERE id = :id", {"id": row["id"]}
            )
        if not left:
            return
        time.sleep(0.1)
    raise AssertionError(f"the outbox row is still there {TIMEOUT}s after its objects went")


def test_purge_deletes_only_what_the_outbox_queued_and_acknowledges_the_rest(stack, bucket):
    # Anything that can publish to object-deletions (the api's account can) names objects in
    # vain: only an outbox row the product wrote is deleted.
    keep = f"generated/{uuid.uuid4()}/1_keep.jpg"
    bucket.blob(keep).upload_from_string(b"keep")
    offset = stack.log_size("purge-objects")
    publisher = pubsub_v1.PublisherClient()
    try:
        path = publisher.topic_path(stack.config.project, "object-deletions")
        forged = json.dumps({"object_names": [keep], "reason": "forged"}).encode()
        bad = publisher.publish(path, forged).result(timeout=TIMEOUT)
        unknown = json.dumps({"outbox_id": str(uuid.uuid4())}).encode()
        publisher.publish(path, unknown).result(timeout=TIMEOUT)
    finally:
        publisher.transport.close()
    done = stack.wait_for_log("purge-objects", '"action": "purge.done"', offset)
    assert (done["deleted"], done["reason"]) == (0, None)
    malformed = stack.wait_for_log("purge-objects", f'"event_id": "{bad}", "code"', offset)
    assert malformed["action"] == "purge_objects.failed"  # acknowledged, not redelivered
    assert malformed["code"] == "malformed_event"
    assert bucket.blob(keep).exists()


def test_a_postgres_restart_mid_run_answers_503_then_recovers(stack, api_url, token):
    client = Client(api_url, token(f"restart-{uuid.uuid4().hex[:6]}"))
    assert client("POST", "/v1/sessions").status_code == 201
    results: list[tuple[float, int, dict[str, str], str]] = []
    stop = threading.Event()

    def hammer() -> None:
        own = Client(api_url, client.session.headers["Authorization"].split()[1])
        while not stop.is_set():
            for path in ("/v1/sessions", "/v1/healthz?ready=true"):
                r = own("GET", path)
                results.append((time.monotonic(), r.status_code, dict(r.headers), r.text))
            time.sleep(0.02)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    pg = cluster(stack.config)
    try:
        time.sleep(1)
        # pg_ctl stop takes seconds under load, and the 503s may begin meanwhile
        stopping_at = time.monotonic()
        pg.stop()
        time.sleep(2)
        pg.start()
        up_at = time.monotonic()
        deadline = up_at + 20
        while time.monotonic() < deadline:  # until the api answers 200 again by itself
            if any(at > up_at and status == 200 for at, status, _, _ in results[-20:]):
                break
            time.sleep(0.2)
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        pg.start()
    statuses = {status for _, status, _, _ in results}
    assert statuses <= {200, 503}, statuses
    outage = [(h, text) for at, status, h, text in results if status == 503]
    assert outage, "the restart was not seen"
    assert all(
        h["Retry-After"] and json.loads(text)["error"]["code"] == "unavailable"
        for h, text in outage
    )
    assert all(at >= stopping_at for at, status, _, _ in results if status == 503)
    recovered = [at for at, status, _, _ in results if status == 200 and at > up_at]
    assert recovered and recovered[0] - up_at < 15
    assert results[-1][1] == 200
