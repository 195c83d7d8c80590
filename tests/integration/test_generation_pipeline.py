"""Plan and render on a real PostgreSQL, Pub/Sub and GCS emulators, and the OpenAI fake driven
by the real openai client: happy paths, fallbacks, failures, duplicates and crashes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared import config, db
from shared.errors import Transient
from shared.generation import model_slots, openai_images, planning, rendering, service
from shared.queries import job_runs, model_calls
from tests.integration import factories as make
from tests.integration.jobs import current, expire_leases, images_of, run_job, submit
from tools.fake_openai import FakeOpenAI
from tools.fixtures.cloud import reset_clients


def test_fallback_job_runs_end_to_end(cloud):
    job = submit(number_of_shots=3, aspect_ratio="16:9", style="film_noir", weather="rain")
    assert job["status"] == "pending"
    assert cloud.messages("generation-requests", job["id"], at_least=1)

    done = run_job(cloud, job)

    assert done["status"] == "completed" and done["completed_at"] and done["started_at"]
    assert (done["generation_method"], done["model_used"]) == ("fallback", "pillow-fallback")
    assert "Film noir style" in done["generated_prompt"]
    images = images_of(job)
    assert [i["generation_index"] for i in images] == [1, 2, 3]
    assert {(i["width"], i["height"], i["generation_method"]) for i in images} == {
        (1536, 864, "fallback")
    }
    assert all(i["prompt_used"] == done["generated_prompt"] for i in images)
    assert len(cloud.objects(f"generated/{job['id']}/")) == 3
    assert len(cloud.objects(f"thumbnails/generated/{job['id']}/")) == 3
    with db.transaction() as conn:
        session = db.one(conn, "SELECT * FROM sessions WHERE id = :id", {"id": job["session_id"]})
    assert session["generated_count"] == 3 and session["thumbnail_url"] == images[0]["gcp_url"]
    (event,) = cloud.messages("generation-events", job["id"], at_least=1)
    assert (event["status"], event["generation_method"]) == ("completed", "fallback")
    assert event["_attributes"] == {"event": "finished", "status": "completed"}


def test_openai_job_with_references_goes_to_the_edit_endpoint(fake, cloud):
    from shared import storage
    from tools.fixtures import images as imagefactory

    with db.transaction() as conn:
        owner = make.user(conn)
        refs = [make.reference(conn, owner) for _ in range(2)]
    for ref in refs:
        name = storage.object_name_from_bucket_path(ref["gcp_bucket_path"])
        storage.write(name, imagefactory.jpeg(), "image/jpeg")
    job = submit(
        owner,
        number_of_shots=2,
        aspect_ratio="9:16",
        reference_image_ids=[str(r["id"]) for r in refs],
    )

    done = run_job(cloud, job)

    assert done["status"] == "completed"
    assert (done["generation_method"], done["model_used"]) == (
        "openai",
        config.settings().openai.image_model,
    )
    calls = fake.requests()
    assert [c["path"] for c in calls].count("/v1/chat/completions") == 1
    edits = [c for c in calls if c["path"] == "/v1/images/edits"]
    assert len(edits) == 2 and not [c for c in calls if c["path"] == "/v1/images/generations"]
    assert {(e["size"], e["reference_images"]) for e in edits} == {("864x1536", 2)}
    assert {t for e in edits for t in e["reference_content_types"]} == {"image/jpeg"}
    assert done["generated_prompt"].startswith("Cinematic, ")  # the text model's answer
    assert {(i["width"], i["height"]) for i in images_of(job)} == {(864, 1536)}


def test_references_reach_the_model_as_their_working_copies(fake, cloud):
    from shared import storage
    from shared.events import StorageObject
    from shared.limits import service as limits
    from shared.queries import reference_images
    from shared.uploads import registration
    from tools.fixtures import images as imagefactory

    # GIVEN a 12 MP photo uploaded and registered as register_upload does
    with db.transaction() as conn:
        owner = make.user(conn)
    name, photo = storage.upload_object_name(owner["id"], "big.jpg"), imagefactory.jpeg(4000, 3000)
    with db.transaction() as conn:
        limits.admit_upload(conn, owner["id"], storage.bucket_path(name), len(photo))
    blob = storage.write(name, photo, "image/jpeg")
    uploaded = StorageObject(config.settings().bucket, name, blob.generation, blob.size, None)
    assert registration.register_object(uploaded) == "registered"
    with db.transaction() as conn:
        reference = reference_images.get_by_path(conn, storage.bucket_path(name))

    # WHEN a job uses it
    job = submit(owner, number_of_shots=1, reference_image_ids=[str(reference["id"])])
    assert run_job(cloud, job)["status"] == "completed"

    # THEN the model got the working copy: the size it uses, fewer bytes
    (edit,) = [c for c in fake.requests() if c["path"] == "/v1/images/edits"]
    assert edit["reference_sizes"] == [[2048, 1536]]
    assert edit["reference_content_types"] == ["image/jpeg"]
    assert edit["reference_bytes"][0] < len(photo)


def test_a_reference_registered_before_working_copies_gets_one_on_first_use(fake, cloud):
    from shared import storage
    from shared.queries import reference_images
    from tools.fixtures import images as imagefactory

    # GIVEN a 12 MP photo registered before working copies existed: its row names no copy
    with db.transaction() as conn:
        owner = make.user(conn)
        legacy = make.reference(conn, owner)
    assert legacy["working_copy_path"] is None
    upload = storage.object_name_from_bucket_path(legacy["gcp_bucket_path"])
    photo = imagefactory.jpeg(4000, 3000)
    storage.write(upload, photo, "image/jpeg")
    copies = []

    # WHEN two jobs use it, one after the other
    for _ in range(2):
        job = submit(owner, number_of_shots=1, reference_image_ids=[str(legacy["id"])])
        assert run_job(cloud, job)["status"] == "completed"
        copies.append(storage.bucket().get_blob(f"working/{upload}.jpg"))

    # THEN the first render made the copy and named it on the row, the second read it, and
    # the model got the copy both times
    with db.transaction() as conn:
        row = reference_images.get_by_path(conn, legacy["gcp_bucket_path"])
    assert row["working_copy_path"] == storage.bucket_path(f"working/{upload}.jpg")
    assert copies[0] is not None and copies[0].generation == copies[1].generation  # made once
    edits = [c for c in fake.requests() if c["path"] == "/v1/images/edits"]
    assert [e["reference_sizes"] for e in edits] == [[[2048, 1536]], [[2048, 1536]]]
    assert all(e["reference_bytes"][0] == copies[0].size < len(photo) for e in edits)


def test_a_reference_registered_before_working_copies_past_todays_limits_fails_the_job(
    fake, cloud, monkeypatch
):
    from shared import storage
    from tools.fixtures import images as imagefactory

    # GIVEN an old reference that today's decode budget would refuse at registration
    with db.transaction() as conn:
        owner = make.user(conn)
        legacy = make.reference(conn, owner)
    upload = storage.object_name_from_bucket_path(legacy["gcp_bucket_path"])
    storage.write(upload, imagefactory.jpeg(4000, 3000), "image/jpeg")
    monkeypatch.setenv("UPLOAD_MAX_DECODE_BYTES", str(1024 * 1024))
    reset_clients()

    # WHEN a job uses it
    job = submit(owner, number_of_shots=1, reference_image_ids=[str(legacy["id"])])
    failed = run_job(cloud, job)

    # THEN the job fails with the reason, nothing was decoded or paid for
    assert (failed["status"], failed["error_code"]) == ("failed", "reference_unusable")
    assert "MiB to decode" in failed["error_message"]
    assert not [c for c in fake.requests() if c["path"].startswith("/v1/images/")]
    assert storage.bucket().get_blob(f"working/{upload}.jpg") is None


def test_a_late_working_copy_of_a_reference_deleted_meanwhile_is_queued_for_deletion(cloud):
    from shared import storage
    from shared.errors import NotFound
    from shared.queries import reference_images
    from shared.uploads import service as uploads
    from tools.fixtures import images as imagefactory

    # GIVEN a reference from before working copies, deleted while a render makes its copy
    with db.transaction() as conn:
        owner = make.user(conn)
        legacy = make.reference(conn, owner)
    upload = storage.object_name_from_bucket_path(legacy["gcp_bucket_path"])
    storage.write(upload, imagefactory.jpeg(), "image/jpeg")
    with db.transaction() as conn:
        reference_images.delete_owned(conn, image_id=legacy["id"], user_id=owner["id"])

    # WHEN the render's copy is to be named, THEN there is no row to name it on
    with pytest.raises(NotFound):
        uploads.late_working_copy(legacy)

    # and the copy it wrote is queued for deletion, like the rest of a deleted reference
    with db.transaction() as conn:
        queued = db.rows(conn, "SELECT object_names, reason FROM pending_object_deletions")
    assert {"object_names": [f"working/{upload}.jpg"], "reason": "reference_image_deleted"} in (
        queued
    )


def test_an_outage_renders_the_fallback_and_the_job_says_mixed(fake, cloud):
    job = submit(number_of_shots=2)
    planning.plan(job["id"])
    fake.add_faults([{"endpoint": "images", "status": 500}])  # the client does not retry here

    rendering.render_shot(job["id"], 1)
    rendering.render_shot(job["id"], 2)

    done = current(job)
    assert [i["generation_method"] for i in images_of(job)] == ["fallback", "openai"]
    assert done["generation_method"] == "mixed"
    assert done["model_used"] == f"{config.settings().openai.image_model} + pillow-fallback"


def test_without_fallback_an_outage_is_retried_by_redelivery(fake, cloud, monkeypatch):
    monkeypatch.setenv("OPENAI_FALLBACK_ON_ERROR", "false")
    reset_clients()
    job = submit(number_of_shots=1)
    planning.plan(job["id"])
    fake.add_faults([{"endpoint": "images", "status": 503}])

    with pytest.raises(openai_images.ModelUnavailable):
        rendering.render_shot(job["id"], 1)
    assert current(job)["leases"] == {}  # released: the redelivery claims at once

    rendering.render_shot(job["id"], 1)
    assert current(job)["status"] == "completed"
    assert [i["generation_method"] for i in images_of(job)] == ["openai"]


def image_calls(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [c for c in fake.requests() if c["path"].startswith("/v1/images/")]


def model_calls_of() -> list[dict[str, Any]]:
    with db.transaction() as conn:
        return db.rows(conn, "SELECT * FROM model_calls ORDER BY started_at")


def test_a_rate_limit_pauses_the_organisation_and_the_shot_waits_without_fallback(fake, cloud):
    job = submit(number_of_shots=1)  # OPENAI_FALLBACK_ON_ERROR is on: outages would fall back
    planning.plan(job["id"])
    fake.add_faults([{"endpoint": "images", "status": 429, "retry_after": 30}])

    with pytest.raises(openai_images.ModelRateLimited):
        rendering.render_shot(job["id"], 1)
    # THEN the shot is back in its subscription: released, nothing rendered, the job alive
    waiting = current(job)
    assert waiting["status"] == "processing" and waiting["leases"] == {}
    assert images_of(job) == [] and cloud.objects(f"generated/{job['id']}/") == []
    assert [c["ended_at"] is not None for c in model_calls_of()] == [True]
    # AND every instance holds back while the organisation is paused
    with pytest.raises(model_slots.ModelBusy):
        rendering.render_shot(job["id"], 1)
    assert current(job)["leases"] == {} and len(image_calls(fake)) == 1

    with db.transaction() as conn:  # the retry-after has passed
        db.execute(conn, "UPDATE model_pauses SET paused_until = now() - interval '1 second'")
    rendering.render_shot(job["id"], 1)
    assert current(job)["status"] == "completed"
    assert [i["generation_method"] for i in images_of(job)] == ["openai"]


def test_a_shot_beyond_the_model_limit_waits_in_its_subscription(fake, cloud, monkeypatch):
    monkeypatch.setenv("OPENAI_CONCURRENT_IMAGES", "1")
    reset_clients()
    job = submit(number_of_shots=2)
    planning.plan(job["id"])
    with db.transaction() as conn:  # another instance's call in flight holds the one slot
        model_slots.admit(conn, "another-instance", 30)

    with pytest.raises(model_slots.ModelBusy) as caught:
        rendering.render_shot(job["id"], 1)
    assert caught.value.retryable
    assert current(job)["leases"] == {} and image_calls(fake) == []  # the claim rolled back too

    with db.transaction() as conn:
        model_calls.end(conn, "another-instance")
    rendering.render_shot(job["id"], 1)
    rendering.render_shot(job["id"], 2)
    assert current(job)["status"] == "completed"
    assert all(c["ended_at"] is not None for c in model_calls_of())


def test_shots_waiting_on_the_model_hold_no_connection(fake, cloud, monkeypatch):
    """Eight shots at the model at once on a pool of one connection: a shot checks it out for
    its transactions (claim, record), never across the model call."""
    monkeypatch.setenv("DB_POOL_SIZE", "1")
    monkeypatch.setenv("DB_POOL_TIMEOUT_SECONDS", "30")
    reset_clients()
    db.dispose()
    job = submit(number_of_shots=8)
    planning.plan(job["id"])
    fake.configure(latency_seconds=3)

    with ThreadPoolExecutor(8) as threads:
        rendered = [threads.submit(rendering.render_shot, job["id"], i) for i in range(1, 9)]
        deadline = time.monotonic() + 20
        while fake.stats()["in_flight"] < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        # THEN all eight wait on the model together, and none of them holds the connection
        at_model, checked_out = fake.stats()["in_flight"], db.pool().checkedout()
        for shot in rendered:
            shot.result(timeout=60)

    assert (at_model, checked_out) == (8, 0)
    assert current(job)["status"] == "completed" and len(images_of(job)) == 8


def test_a_content_policy_refusal_fails_the_job_with_a_clear_message(fake, cloud):
    job = submit(number_of_shots=3, prompt="something [fake:moderation]")
    planning.plan(job["id"])

    rendering.render_shot(job["id"], 2)
    rendering.render_shot(job["id"], 1)  # the rest renders nothing more

    failed = current(job)
    assert failed["status"] == "failed" and failed["completed_at"]
    assert "content policy" in failed["error_message"]
    assert images_of(job) == [] and cloud.objects(f"generated/{job['id']}/") == []
    (event,) = cloud.messages("generation-events", job["id"], at_least=1)
    assert event["status"] == "failed" and "content policy" in event["error_message"]


def test_duplicate_and_concurrent_deliveries_render_each_shot_once(fake, cloud):
    job = submit(number_of_shots=4)
    planning.plan(job["id"])
    fake.configure(latency_seconds=0.3)  # long enough for the duplicates to overlap
    deliveries = [i for i in (1, 2, 3, 4) for _ in range(3)]  # every shot three times at once
    outcomes: list[str] = []
    lock = threading.Lock()

    def deliver(index: int) -> None:
        try:
            rendering.render_shot(job["id"], index)
            outcome = "acked"
        except Transient:
            outcome = "retry"  # another delivery held the claim: Pub/Sub brings it back
        with lock:
            outcomes.append(outcome)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(deliver, deliveries))
    for index in (1, 2, 3, 4):  # the redeliveries of the refused ones
        rendering.render_shot(job["id"], index)

    assert current(job)["status"] == "completed"
    assert [i["generation_index"] for i in images_of(job)] == [1, 2, 3, 4]
    assert len(cloud.objects(f"generated/{job['id']}/")) == 4
    assert [c["path"] for c in fake.requests()].count("/v1/images/generations") == 4
    assert "retry" in outcomes
    assert len(cloud.messages("generation-events", job["id"], at_least=1, timeout=2)) == 1


def test_the_last_shots_finishing_together_complete_the_job_once(cloud):
    # GIVEN a job without a session (whose trigger would serialise the inserts by chance) and
    # commits slowed down, so that the recording transactions of all shots overlap
    with db.transaction() as conn:
        owner = make.user(conn)
        job = make.job(conn, owner, None, number_of_shots=4)
        db.execute(
            conn,
            """CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$""",
        )
        db.execute(
            conn,
            """CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON generated_images
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_insert()""",
        )
    planning.plan(job["id"])

    # WHEN every shot renders at once
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: rendering.render_shot(job["id"], i), range(1, 5)))

    # THEN exactly one of them completed the job, and announced it
    assert current(job)["status"] == "completed"
    assert len(images_of(job)) == 4
    assert len(cloud.messages("generation-events", job["id"], at_least=2, timeout=2)) == 1


def test_duplicate_plan_deliveries_publish_the_shots_once(cloud):
    job = submit(number_of_shots=3)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: _outcome(planning.plan, job["id"]), range(3)))
    planning.plan(job["id"])  # a late redelivery

    assert results.count("acked") >= 1
    assert sorted(m["index"] for m in cloud.messages("render-requests", job["id"], 3)) == [1, 2, 3]
    assert current(job)["status"] == "processing" and current(job)["dispatched_at"]


def _outcome(action, *args) -> str:
    try:
        action(*args)
    except Transient:
        return "retry"
    return "acked"


def test_a_redelivery_after_a_partial_plan_finishes_it(cloud):
    job = submit(number_of_shots=2)
    with db.transaction() as conn:  # a worker that started the job, then died before publishing
        job_runs.claim_plan(conn, job_id=job["id"], token="dead", seconds=30)
        job_runs.start(conn, job_id=job["id"], token="dead", generated_prompt="written once")

    with pytest.raises(Transient):
        planning.plan(job["id"])  # its claim is still alive: retried later
    expire_leases(job)
    planning.plan(job["id"])

    planned = current(job)
    assert planned["dispatched_at"] and planned["generated_prompt"] == "written once"
    assert sorted(m["index"] for m in cloud.messages("render-requests", job["id"], 2)) == [1, 2]


def test_a_render_killed_mid_shot_recovers_on_redelivery(cloud):
    job = submit(number_of_shots=1)
    planning.plan(job["id"])
    with db.transaction() as conn:  # the killed worker's claim
        job_runs.claim_shot(conn, job_id=job["id"], index=1, token="dead", seconds=30)

    with pytest.raises(Transient):
        rendering.render_shot(job["id"], 1)
    expire_leases(job)
    rendering.render_shot(job["id"], 1)

    assert current(job)["status"] == "completed" and len(images_of(job)) == 1


def test_a_render_that_lost_its_claim_records_nothing_in_the_next_run(fake, cloud):
    # GIVEN a render in the middle of its model call
    job = submit(number_of_shots=2)
    planning.plan(job["id"])
    fake.configure(latency_seconds=1.5)
    old = threading.Thread(target=rendering.render_shot, args=(job["id"], 1))
    old.start()
    while "1" not in current(job)["leases"]:
        assert old.is_alive()
    # WHEN the job is cancelled and run again meanwhile (which clears its claims)
    service.cancel(str(job["id"]), job["user_id"])
    service.retry(str(job["id"]), job["user_id"])
    planning.plan(job["id"])
    old.join(timeout=30)
    # THEN the old render, without its claim, recorded nothing in the new run
    assert current(job)["status"] == "processing" and images_of(job) == []
    fake.configure(latency_seconds=0)
    for index in (1, 2):
        rendering.render_shot(job["id"], index)
    assert current(job)["status"] == "completed" and len(images_of(job)) == 2
    assert len(cloud.objects(f"generated/{job['id']}/")) == 2


def test_a_storage_failure_loses_nothing(cloud, monkeypatch):
    job = submit(number_of_shots=1)
    planning.plan(job["id"])
    with monkeypatch.context() as patch:
        patch.setenv("BUCKET_NAME", "a-bucket-that-is-not-there")  # every write refused
        reset_clients()
        with pytest.raises(Exception):  # noqa: B017 - whatever storage raises, it is not acked
            rendering.render_shot(job["id"], 1)
    assert current(job)["leases"] == {} and images_of(job) == []

    reset_clients()
    rendering.render_shot(job["id"], 1)
    assert current(job)["status"] == "completed"
    assert len(cloud.objects(f"generated/{job['id']}/")) == 1


def test_a_database_outage_while_recording_loses_nothing(cloud, monkeypatch):
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "500")
    reset_clients()
    db.dispose()
    job = submit(number_of_shots=1)
    planning.plan(job["id"])
    with db.transaction() as blocker:
        db.one(
            blocker, "SELECT 1 FROM generation_jobs WHERE id = :id FOR UPDATE", {"id": job["id"]}
        )
        with pytest.raises(Transient):
            rendering.render_shot(job["id"], 1)  # the job row cannot be locked: nothing recorded
    assert images_of(job) == []

    expire_leases(job)  # the release could not get through either: its lease lapses
    rendering.render_shot(job["id"], 1)
    assert current(job)["status"] == "completed" and len(images_of(job)) == 1
    assert len(cloud.objects(f"generated/{job['id']}/")) == 1


def test_a_malformed_or_unknown_shot_is_acknowledged(cloud):
    job = submit(number_of_shots=1)
    planning.plan(job["id"])
    rendering.render_shot(job["id"], 5)  # beyond number_of_shots: nothing to do
    assert images_of(job) == [] and current(job)["leases"] == {}
