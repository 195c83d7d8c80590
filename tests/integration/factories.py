"""Rows for database tests, made through the runtime queries."""

from __future__ import annotations

import uuid
from typing import Any

from shared.db import Connection
from shared.generation.parameters import JobParameters
from shared.queries import generated_images, jobs, reference_images, sessions, users

BUCKET = "video-gen-image-bucket"


def user(conn: Connection, name: str | None = None) -> dict[str, Any]:
    subject = name or f"user-{uuid.uuid4().hex[:8]}"
    return users.get_or_create(
        conn, auth_subject=subject, email=f"{subject}@example.com", display_name=subject
    )


def session(conn: Connection, owner: dict[str, Any], title: str | None = None) -> dict[str, Any]:
    return sessions.create(conn, user_id=owner["id"], title=title)


def owned_session(conn: Connection) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new user and a session of theirs."""
    owner = user(conn)
    return owner, session(conn, owner)


def reference(
    conn: Connection, owner: dict[str, Any], session_row: dict[str, Any] | None = None
) -> dict[str, Any]:
    name = f"uploads/{owner['id']}/20261130T000000Z_{uuid.uuid4().hex[:6]}.jpg"
    return reference_images.register(
        conn,
        user_id=owner["id"],
        session_id=session_row["id"] if session_row else None,
        gcp_bucket_path=f"{BUCKET}/{name}",
        gcp_url=f"https://storage.googleapis.com/{BUCKET}/{name}",
        file_name=name.rsplit("/", 1)[1],
        file_size=1234,
        mime_type="image/jpeg",
        width=640,
        height=480,
    )


def job(
    conn: Connection, owner: dict[str, Any], session_row: dict[str, Any] | None, **fields: Any
) -> dict[str, Any]:
    """A pending job; `fields` are parameters, not validated (the schema's CHECKs are tested)."""
    fields.setdefault("prompt", "a lighthouse at dusk")
    fields.setdefault("number_of_shots", 2)
    return jobs.create(
        conn,
        user_id=owner["id"],
        session_id=session_row["id"] if session_row else None,
        parameters=JobParameters.model_construct(**fields).columns(),
        deadline_seconds=900,
    )


def image(conn: Connection, job_row: dict[str, Any], index: int) -> dict[str, Any]:
    name = f"generated/{job_row['id']}/{index}_20261130T000000Z.jpg"
    return generated_images.record(
        conn,
        job_id=job_row["id"],
        user_id=job_row["user_id"],
        session_id=job_row["session_id"],
        gcp_bucket_path=f"{BUCKET}/{name}",
        gcp_url=f"https://storage.googleapis.com/{BUCKET}/{name}",
        file_name=name.rsplit("/", 1)[1],
        file_size=2048,
        width=1024,
        height=1024,
        prompt_used=job_row["prompt"],
        generation_index=index,
        generation_method="fallback",
    )
