"""purge_objects on a real PostgreSQL and the GCS emulator: a message names outbox rows, never
objects, so only what the product queued can be deleted; and an object is deleted only while
it is the generation that was recorded, so a purge that comes late cannot remove a shot
rendered again under the same name."""

from __future__ import annotations

import uuid

import pytest

from shared import db, purge, storage
from shared.errors import InvalidInput
from shared.gallery import routes as gallery
from shared.generation import job_events, planning, rendering, service
from shared.queries import object_deletions
from tests.integration.jobs import current, images_of, submit


def _outbox_ids() -> set[uuid.UUID]:
    with db.transaction() as conn:
        return {r["id"] for r in db.rows(conn, "SELECT id FROM pending_object_deletions")}


def test_a_message_deletes_only_what_its_outbox_rows_name(cloud):
    prefix = f"generated/{uuid.uuid4()}/"
    queued, other = f"{prefix}1_x.jpg", f"{prefix}2_y.jpg"
    generations = {
        name: storage.write(name, b"jpeg", "image/jpeg").generation for name in (queued, other)
    }
    with db.transaction() as conn:
        (entry,) = purge.enqueue(conn, [(queued, generations[queued])], reason="image_deleted")

    # Names in a message are not a request to delete anything; unknown outbox ids name nothing.
    with pytest.raises(InvalidInput):
        purge.purge({"object_names": [other], "reason": "forged"})
    assert purge.purge({"outbox_id": str(uuid.uuid4())})["deleted"] == 0
    assert cloud.objects(prefix) == [queued, other]

    assert purge.purge({"outbox_id": str(entry["id"])})["deleted"] == 1
    assert cloud.objects(prefix) == [other]
    assert entry["id"] not in _outbox_ids()  # done: a redelivery finds nothing to do
    assert purge.purge({"outbox_id": str(entry["id"])})["deleted"] == 0


def test_a_late_purge_leaves_a_shot_rendered_again_under_the_same_name(cloud):
    # GIVEN a failed job whose owner deleted its one image; the purge has not run yet
    job = submit(number_of_shots=2)
    planning.plan(job["id"])
    rendering.render_shot(job["id"], 1)
    job_events.fail(job["id"], "gave up", "test")
    (first,) = images_of(job)
    entries = gallery.delete_image(job["user_id"], first["id"])
    # WHEN the job runs again, renders the shot under the same names, and the purge comes late
    service.retry(str(job["id"]), job["user_id"])
    planning.plan(job["id"])
    for index in (1, 2):
        rendering.render_shot(job["id"], index)
    assert current(job)["status"] == "completed"
    (entry,) = entries
    summary = purge.purge({"outbox_id": str(entry["id"])})
    # THEN the new objects stay: they are not the generations the deleted row recorded
    assert summary == {"deleted": 0, "gone": 0, "replaced": 2}
    again = images_of(job)[0]
    assert again["gcp_bucket_path"] == first["gcp_bucket_path"]
    name = storage.object_name_from_bucket_path(again["gcp_bucket_path"])
    assert storage.bucket().get_blob(name).generation == again["object_generation"]
    thumbnail = storage.object_name_from_url(again["thumbnail_url"])
    assert storage.bucket().get_blob(thumbnail).generation == again["thumbnail_generation"]
    assert not _outbox_ids()


def test_the_republisher_sends_outbox_ids_and_rows_wait_for_their_purge(cloud):
    # GIVEN an outbox row whose writer died before publishing
    name = f"generated/{uuid.uuid4()}/1_x.jpg"
    generation = storage.write(name, b"jpeg", "image/jpeg").generation
    with db.transaction() as conn:
        row = object_deletions.add(
            conn, object_names=[name], object_generations=[generation], reason="t", hold_seconds=-1
        )
    # WHEN the maintenance task republishes it
    assert purge.republish_pending() == {"due": 1, "published": 1}
    # THEN the message names the row, which stays until purge_objects has deleted its objects
    cloud.pull("object-deletions")
    (message,) = [m for m in cloud.seen["object-deletions"] if m["outbox_id"] == str(row["id"])]
    assert message == {"outbox_id": str(row["id"]), "_attributes": {}}
    assert row["id"] in _outbox_ids()
    purge.purge({"outbox_id": message["outbox_id"]})
    assert name not in cloud.objects("generated/") and row["id"] not in _outbox_ids()
