"""The schema on a real PostgreSQL 15: idempotent migrations, triggers, cascades, constraints."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from urllib.parse import urlsplit

import pytest

from shared import db, migrate, vocabulary
from shared.db import statements
from shared.errors import InvalidInput, NotFound
from shared.generation import parameters
from shared.generation.parameters import JobParameters
from shared.queries import jobs
from tests.integration import factories as make
from tools.pgcluster import pg_bin


def _scalar(sql: str, **params):
    with db.transaction() as conn:
        row = db.one(conn, sql, params)
        return next(iter(row.values())) if row else None


def _session(session_id):
    with db.transaction() as conn:
        return db.one(conn, "SELECT * FROM sessions WHERE id = :id", {"id": session_id})


def _delete(table: str, row_id) -> None:
    with db.transaction() as conn:
        db.execute(conn, f"DELETE FROM {table} WHERE id = :id", {"id": row_id})


def _schema_dump(url: str) -> str:
    parts = urlsplit(url)
    env = {**os.environ, "PGPASSWORD": parts.password or ""}
    out = subprocess.run(
        [
            pg_bin("pg_dump"),
            "--schema-only",
            "-h",
            parts.hostname,
            "-p",
            str(parts.port),
            "-U",
            parts.username,
            parts.path.lstrip("/"),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    # pg_dump 15.x prints a random \restrict key in newer minor versions.
    return re.sub(r"^\\(un)?restrict .*$", "", out, flags=re.M)


def test_migrating_again_changes_nothing(database):
    before = _schema_dump(database)
    assert "CREATE TABLE public.generated_images" in before
    migrate.migrate()
    migrate.migrate()
    assert _schema_dump(database) == before


def test_statuses_and_vocabularies_match_the_check_constraints(database):
    def allowed(constraint: str) -> set[str]:
        definition = _scalar(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :name",
            name=constraint,
        )
        return set(re.findall(r"'([^']+)'::text", definition))

    assert allowed("generation_jobs_status_check") == set(vocabulary.JOB_STATUSES)
    assert allowed("generation_jobs_shot_type_check") == set(vocabulary.SHOT_TYPES)
    assert allowed("generation_jobs_camera_angle_check") == set(vocabulary.CAMERA_ANGLES)
    assert allowed("generation_jobs_style_check") == set(vocabulary.STYLES)
    assert allowed("generation_jobs_aspect_ratio_check") == set(vocabulary.ASPECT_RATIOS)
    assert allowed("generation_jobs_generation_method_check") == set(vocabulary.GENERATION_METHODS)
    assert allowed("generated_images_generation_method_check") == set(vocabulary.IMAGE_METHODS)
    assert allowed("reference_images_mime_type_check") == set(vocabulary.REFERENCE_MIME_TYPES)
    assert allowed("generation_jobs_webhook_events_check") == set(vocabulary.WEBHOOK_EVENTS)
    assert allowed("webhook_messages_type_check") == set(vocabulary.WEBHOOK_TYPES)
    assert allowed("webhook_messages_status_check") == set(vocabulary.WEBHOOK_MESSAGE_STATUSES)
    assert allowed("webhook_deliveries_outcome_check") == set(vocabulary.WEBHOOK_OUTCOMES)


def test_job_parameter_defaults_and_bounds_match_the_schema(database):
    def bounds(constraint: str) -> list[int]:
        definition = _scalar(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = :name",
            name=constraint,
        )
        return [int(n) for n in re.findall(r"[<>]= (\d+)", definition)]

    def default(column: str) -> str:
        return _scalar(
            "SELECT column_default FROM information_schema.columns"
            " WHERE table_name = 'generation_jobs' AND column_name = :column",
            column=column,
        )

    assert bounds("generation_jobs_number_of_shots_check") == [
        parameters.MIN_SHOTS,
        parameters.MAX_SHOTS,
    ]
    assert bounds("generation_jobs_prompt_check") == [1, parameters.MAX_PROMPT_LENGTH]
    for setting in ("location", "lighting", "weather"):
        assert bounds(f"generation_jobs_{setting}_check") == [parameters.MAX_SETTING_LENGTH]
    fields = JobParameters.model_fields
    assert default("number_of_shots") == str(fields["number_of_shots"].default)
    assert default("aspect_ratio") == f"'{fields['aspect_ratio'].default}'::text"
    assert default("is_custom_enabled") == str(fields["is_custom_enabled"].default).lower()


def test_the_insert_takes_every_job_parameter():
    _, names = statements._numbered(jobs._CREATE)
    assert set(JobParameters.model_fields) <= set(names)


def test_new_image_counts_and_first_image_becomes_thumbnail(database):
    with db.transaction() as conn:
        owner, session = make.owned_session(conn)
        job = make.job(conn, owner, session, number_of_shots=3)
    time.sleep(0.01)
    with db.transaction() as conn:
        first = make.image(conn, job, 1)
    with db.transaction() as conn:
        make.image(conn, job, 2)
    row = _session(session["id"])
    assert row["generated_count"] == 2
    assert row["thumbnail_image_id"] == first["id"]
    assert row["thumbnail_url"] == first["gcp_url"]
    assert row["updated_at"] > session["updated_at"]


def test_recording_the_same_shot_twice_counts_once(database):
    with db.transaction() as conn:
        owner, session = make.owned_session(conn)
        job = make.job(conn, owner, session)
        first = make.image(conn, job, 1)
        again = make.image(conn, job, 1)
    assert first["created"] is True and again["created"] is False
    assert again["id"] == first["id"]
    assert _session(session["id"])["generated_count"] == 1


def test_deleting_images_updates_count_and_repicks_thumbnail(database):
    with db.transaction() as conn:
        owner, session = make.owned_session(conn)
        job = make.job(conn, owner, session, number_of_shots=3)
    images = []
    for index in (1, 2, 3):  # one transaction each: the thumbnail is the first by created_at
        with db.transaction() as conn:
            images.append(make.image(conn, job, index))
    _delete("generated_images", images[2]["id"])
    row = _session(session["id"])
    assert (row["generated_count"], row["thumbnail_image_id"]) == (2, images[0]["id"])

    _delete("generated_images", images[0]["id"])  # the thumbnail image itself
    row = _session(session["id"])
    assert row["generated_count"] == 1
    assert row["thumbnail_image_id"] == images[1]["id"]
    assert row["thumbnail_url"] == images[1]["gcp_url"]

    _delete("generated_images", images[1]["id"])
    row = _session(session["id"])
    assert (row["generated_count"], row["thumbnail_image_id"], row["thumbnail_url"]) == (
        0,
        None,
        None,
    )


def test_updated_at_follows_every_update(database):
    with db.transaction() as conn:
        owner, session = make.owned_session(conn)
        job = make.job(conn, owner, session)
    time.sleep(0.01)
    with db.transaction() as conn:
        db.execute(conn, "UPDATE users SET display_name = 'x' WHERE id = :id", {"id": owner["id"]})
        db.execute(
            conn, "UPDATE sessions SET title = 'Renamed' WHERE id = :id", {"id": session["id"]}
        )
        db.execute(
            conn,
            "UPDATE generation_jobs SET status = 'processing' WHERE id = :id",
            {"id": job["id"]},
        )
    assert (
        _scalar("SELECT updated_at FROM users WHERE id = :id", id=owner["id"]) > owner["updated_at"]
    )
    assert _session(session["id"])["updated_at"] > session["updated_at"]
    assert (
        _scalar("SELECT updated_at FROM generation_jobs WHERE id = :id", id=job["id"])
        > job["updated_at"]
    )


def _count(table: str, column: str, value) -> int:
    return _scalar(f"SELECT count(*) FROM {table} WHERE {column} = :v", v=value)


def test_deleting_a_session_takes_its_jobs_and_images_and_keeps_references(database):
    with db.transaction() as conn:
        owner, session = make.owned_session(conn)
        ref = make.reference(conn, owner, session)
        job = make.job(conn, owner, session)
        from shared.queries import jobs

        jobs.link_references(conn, job_id=job["id"], user_id=owner["id"], reference_ids=[ref["id"]])
        make.image(conn, job, 1)
    _delete("sessions", session["id"])
    assert _count("generation_jobs", "id", job["id"]) == 0
    assert _count("generated_images", "generation_job_id", job["id"]) == 0
    assert _count("generation_job_reference_images", "reference_image_id", ref["id"]) == 0
    assert _scalar("SELECT session_id FROM reference_images WHERE id = :id", id=ref["id"]) is None


def test_deleting_a_job_takes_its_images_and_links_and_the_count_follows(database):
    with db.transaction() as conn:
        owner, session = make.owned_session(conn)
        ref = make.reference(conn, owner)
        job = make.job(conn, owner, session)
        from shared.queries import jobs

        jobs.link_references(conn, job_id=job["id"], user_id=owner["id"], reference_ids=[ref["id"]])
        make.image(conn, job, 1)
        make.image(conn, job, 2)
    _delete("generation_jobs", job["id"])
    assert _count("generated_images", "generation_job_id", job["id"]) == 0
    assert _count("generation_job_reference_images", "generation_job_id", job["id"]) == 0
    assert _count("reference_images", "id", ref["id"]) == 1
    row = _session(session["id"])
    assert (row["generated_count"], row["thumbnail_url"]) == (0, None)


def test_deleting_a_reference_removes_its_links_only(database):
    with db.transaction() as conn:
        owner = make.user(conn)
        ref = make.reference(conn, owner)
        job = make.job(conn, owner, None)
        from shared.queries import jobs

        jobs.link_references(conn, job_id=job["id"], user_id=owner["id"], reference_ids=[ref["id"]])
        db.execute(conn, "DELETE FROM reference_images WHERE id = :id", {"id": ref["id"]})
    assert _count("generation_job_reference_images", "generation_job_id", job["id"]) == 0
    assert _count("generation_jobs", "id", job["id"]) == 1


def test_deleting_a_user_deletes_everything_they_own(database):
    with db.transaction() as conn:
        owner = make.user(conn)
        other = make.user(conn)
        session = make.session(conn, owner)
        make.reference(conn, owner, session)
        make.image(conn, make.job(conn, owner, session), 1)
        make.session(conn, other)
    _delete("users", owner["id"])
    for table in ("sessions", "reference_images", "generation_jobs", "generated_images"):
        assert _count(table, "user_id", owner["id"]) == 0
    assert _count("sessions", "user_id", other["id"]) == 1


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [
        ({"number_of_shots": 11}, "generation_jobs_number_of_shots_check"),
        ({"number_of_shots": 0}, "generation_jobs_number_of_shots_check"),
        ({"aspect_ratio": "5:4"}, "generation_jobs_aspect_ratio_check"),
        ({"style": "vaporwave"}, "generation_jobs_style_check"),
        ({"prompt": "   "}, "generation_jobs_prompt_check"),
        ({"location": "x" * 201}, "generation_jobs_location_check"),
    ],
)
def test_check_constraints_surface_as_invalid_input(database, fields, constraint):
    with db.transaction() as conn:
        owner = make.user(conn)
    with pytest.raises(InvalidInput) as caught, db.transaction() as conn:
        make.job(conn, owner, None, **fields)
    assert caught.value.http_status == 400
    assert caught.value.code == "constraint_violation"
    # What a client sees names no part of the schema.
    assert constraint not in json.dumps(caught.value.to_body())
    assert caught.value.details is None


def test_a_bad_status_is_refused(database):
    with db.transaction() as conn:
        owner = make.user(conn)
        job = make.job(conn, owner, None)
    with pytest.raises(InvalidInput), db.transaction() as conn:
        db.execute(
            conn, "UPDATE generation_jobs SET status = 'done' WHERE id = :id", {"id": job["id"]}
        )


def test_unique_and_foreign_key_violations_name_their_constraint(database):
    with db.transaction() as conn:
        owner = make.user(conn)
        job = make.job(conn, owner, None)
        image = make.image(conn, job, 1)
    with pytest.raises(db.ConstraintViolation) as caught, db.transaction() as conn:
        db.execute(
            conn,
            "INSERT INTO generated_images (generation_job_id, user_id, gcp_bucket_path, gcp_url,"
            " file_name, file_size, generation_index) VALUES (:j, :u, :p, 'u', 'f', 1, 2)",
            {"j": job["id"], "u": owner["id"], "p": image["gcp_bucket_path"]},
        )
    assert caught.value.constraint == "generated_images_gcp_bucket_path_key"
    assert caught.value.http_status == 409
    with pytest.raises(db.ConstraintViolation) as caught, db.transaction() as conn:
        make.session(conn, {"id": uuid.uuid4()})
    assert caught.value.constraint == "sessions_user_id_fkey"
    assert caught.value.http_status == NotFound.http_status


def test_a_malformed_uuid_is_invalid_input(database):
    with pytest.raises(InvalidInput), db.transaction() as conn:
        db.one(conn, "SELECT * FROM sessions WHERE id = CAST(:id AS uuid)", {"id": "not-a-uuid"})
