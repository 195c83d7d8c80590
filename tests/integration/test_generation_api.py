"""The generation routes through the api dispatcher, on a real PostgreSQL and the emulators."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import db
from shared.generation import planning, rendering
from shared.queries import jobs
from tests.apikit import call_as
from tests.integration import factories as make


def test_create_records_a_pending_job_in_a_new_session_and_queues_it(cloud, alice):
    status, job, headers = call_as(
        alice, "POST", "/v1/generations", {"prompt": "a red fox", "number_of_shots": 2}
    )

    assert status == 202 and job["status"] == "pending"
    assert headers["Location"] == f"/v1/generations/{job['id']}"
    assert job["progress"] == {"done": 0, "total": 2} and job["images"] == []
    assert not {"leases", "request_hash", "redrives", "event_published_at"} & set(job)
    with db.transaction() as conn:
        session = db.one(conn, "SELECT * FROM sessions WHERE id = :id", {"id": job["session_id"]})
    assert session["title"] == "New Session" and session["user_id"] == alice["id"]
    assert cloud.messages("generation-requests", job["id"], at_least=1) == [
        {"job_id": job["id"], "_attributes": {}}
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prompt", ""),
        ("prompt", "x" * 4001),
        ("number_of_shots", 0),
        ("number_of_shots", 11),
        ("number_of_shots", "5"),
        ("number_of_shots", True),
        ("shot_type", "selfie"),
        ("camera_angle", "sideways"),
        ("style", "cubism"),
        ("aspect_ratio", "5:4"),
        ("location", "x" * 201),
        ("is_custom_enabled", "yes"),
        ("reference_image_ids", ["not-a-uuid"]),
        ("reference_image_ids", [str(uuid.uuid4()) for _ in range(9)]),
        ("colour", "red"),
    ],
)
def test_every_parameter_is_validated(cloud, alice, field, value):
    status, body, _ = call_as(alice, "POST", "/v1/generations", {"prompt": "ok", field: value})
    assert status == 400
    assert body["error"]["details"][0]["field"].startswith(field)


def test_another_users_session_or_reference_is_not_found_and_nothing_is_recorded(cloud, alice, bob):
    with db.transaction() as conn:
        bobs_session = make.session(conn, bob)
        bobs_reference = make.reference(conn, bob)
    for extra in (
        {"session_id": str(bobs_session["id"])},
        {"reference_image_ids": [str(bobs_reference["id"])]},
    ):
        status, body, _ = call_as(alice, "POST", "/v1/generations", {"prompt": "p", **extra})
        assert status == 404, body
    with db.transaction() as conn:
        assert db.one(conn, "SELECT count(*) AS n FROM generation_jobs")["n"] == 0
        assert db.one(conn, "SELECT count(*) AS n FROM sessions")["n"] == 1


def test_an_idempotency_key_replays_the_same_job_and_refuses_another_body(cloud, alice):
    body = {"prompt": "a red fox", "style": "anime"}
    key = {"Idempotency-Key": "k-1"}
    first = call_as(alice, "POST", "/v1/generations", body, headers=key)
    again = call_as(alice, "POST", "/v1/generations", body, headers=key)
    other = call_as(alice, "POST", "/v1/generations", {**body, "style": "sketch"}, headers=key)

    assert (first[0], again[0]) == (202, 202) and first[1]["id"] == again[1]["id"]
    assert again[2]["Idempotent-Replayed"] == "true"
    assert other[0] == 409 and other[1]["error"]["code"] == "idempotency_key_reused"
    assert len(cloud.messages("generation-requests", first[1]["id"], at_least=2, timeout=2)) == 1


def test_concurrent_requests_with_one_key_make_one_job(cloud, alice):
    body, key = {"prompt": "a red fox"}, {"Idempotency-Key": "k-race"}
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda _: call_as(alice, "POST", "/v1/generations", body, headers=key), range(4)
            )
        )
    assert {a[0] for a in answers} == {202}
    assert len({a[1]["id"] for a in answers}) == 1
    with db.transaction() as conn:
        assert db.one(conn, "SELECT count(*) AS n FROM generation_jobs")["n"] == 1
        assert db.one(conn, "SELECT count(*) AS n FROM sessions")["n"] == 1


def test_get_shows_progress_references_and_signed_images_to_the_owner_only(cloud, alice, bob):
    from shared import storage
    from tools.fixtures import images as imagefactory

    with db.transaction() as conn:
        reference = make.reference(conn, alice)
    storage.write(
        storage.object_name_from_bucket_path(reference["gcp_bucket_path"]),
        imagefactory.jpeg(),
        "image/jpeg",
    )
    _, job, _ = call_as(
        alice,
        "POST",
        "/v1/generations",
        {"prompt": "p", "number_of_shots": 2, "reference_image_ids": [str(reference["id"])]},
    )
    planning.plan(job["id"])
    rendering.render_shot(job["id"], 2)

    status, shown, _ = call_as(alice, "GET", f"/v1/generations/{job['id']}")

    assert status == 200 and shown["status"] == "processing"
    assert shown["progress"] == {"done": 1, "total": 2}
    assert [r["id"] for r in shown["reference_images"]] == [str(reference["id"])]
    assert "X-Goog-Signature" in shown["reference_image_urls"][0]
    (image,) = shown["images"]
    assert image["generation_index"] == 2 and "X-Goog-Signature" in image["url"]
    assert "X-Goog-Signature" in image["thumbnail_url"] and "gcp_url" not in image
    expiry = min(image["urls_expire_at"], shown["reference_images"][0]["urls_expire_at"])
    assert shown["urls_expire_at"] == expiry
    assert call_as(bob, "GET", f"/v1/generations/{job['id']}")[0] == 404
    assert call_as(alice, "GET", "/v1/generations/not-a-uuid")[0] == 404


def test_cancel_and_retry_follow_the_state_machine(cloud, alice, bob):
    _, job, _ = call_as(alice, "POST", "/v1/generations", {"prompt": "p", "number_of_shots": 2})
    path = f"/v1/generations/{job['id']}"

    assert call_as(alice, "POST", f"{path}/retry")[0] == 409  # pending: nothing to retry
    assert call_as(bob, "POST", f"{path}/cancel")[0] == 404
    status, cancelled, _ = call_as(alice, "POST", f"{path}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled" and cancelled["completed_at"]
    assert call_as(alice, "POST", f"{path}/cancel")[1]["error"]["code"] == "invalid_state"
    planning.plan(job["id"])  # the queued request finds the job cancelled
    assert cloud.messages("render-requests", job["id"], timeout=1) == []

    status, retried, _ = call_as(alice, "POST", f"{path}/retry")
    assert status == 202 and retried["status"] == "pending" and retried["completed_at"] is None
    planning.plan(job["id"])
    for index in (1, 2):
        rendering.render_shot(job["id"], index)
    assert call_as(alice, "GET", path)[1]["status"] == "completed"
    assert call_as(alice, "POST", f"{path}/retry")[0] == 409
    events = cloud.messages("generation-events", job["id"], at_least=2)
    assert [e["status"] for e in events] == ["cancelled", "completed"]  # one per finish


def test_a_session_lists_its_jobs_newest_first_by_status_in_pages(cloud, alice, bob):
    _, first, _ = call_as(alice, "POST", "/v1/generations", {"prompt": "first"})
    session = first["session_id"]
    made = [first["id"]]
    for n in range(4):
        made.append(
            call_as(alice, "POST", "/v1/generations", {"prompt": f"p{n}", "session_id": session})[
                1
            ]["id"]
        )
    call_as(alice, "POST", f"/v1/generations/{made[1]}/cancel")

    seen, cursor = [], ""
    while True:
        status, page, _ = call_as(
            alice, "GET", f"/v1/sessions/{session}/generations?limit=2&cursor={cursor}"
        )
        assert status == 200
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == made[::-1]
    _, cancelled, _ = call_as(alice, "GET", f"/v1/sessions/{session}/generations?status=cancelled")
    assert [j["id"] for j in cancelled["items"]] == [made[1]]
    assert cancelled["items"][0]["progress"] == {"done": 0, "total": 1}
    assert call_as(alice, "GET", f"/v1/sessions/{session}/generations?status=done")[0] == 400
    assert call_as(bob, "GET", f"/v1/sessions/{session}/generations")[0] == 404


def test_a_job_whose_request_was_never_published_is_not_lost(cloud, alice):
    from shared.generation import sweeper

    with db.transaction() as conn:  # as if the publish after the commit had failed
        job = make.job(conn, alice, make.session(conn, alice), number_of_shots=1)
    sweeper.sweep_jobs(stall_seconds=0)
    assert cloud.messages("generation-requests", job["id"], at_least=1)
    with db.transaction() as conn:
        assert jobs.get(conn, job["id"])["redrives"] == 1
