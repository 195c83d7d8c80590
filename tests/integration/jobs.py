"""Generation jobs driven through the services, as the functions drive them, and read back."""

from __future__ import annotations

from typing import Any

from shared import db
from shared.generation import planning, rendering, service
from shared.generation.models import GenerationRequest
from shared.queries import jobs
from tests.integration import factories as make
from tools.fixtures.cloud import Cloud


def submit(owner: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A job created through the service, as POST /v1/generations does."""
    if owner is None:
        with db.transaction() as conn:
            owner = make.user(conn)
    fields.setdefault("prompt", "a lighthouse on a cliff at dusk")
    job, _, _ = service.create(owner["id"], GenerationRequest.model_validate(fields))
    return job


def run_job(cloud: Cloud, job: dict[str, Any]) -> dict[str, Any]:
    """Plan, then render every published shot; the job as it ends."""
    planning.plan(job["id"])
    for message in cloud.messages("render-requests", job["id"], at_least=job["number_of_shots"]):
        rendering.render_shot(job["id"], message["index"])
    return current(job)


def current(job: dict[str, Any]) -> dict[str, Any]:
    with db.transaction() as conn:
        return jobs.get(conn, job["id"])


def images_of(job: dict[str, Any]) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        return db.rows(
            conn,
            "SELECT * FROM generated_images WHERE generation_job_id = :id ORDER BY generation_index",
            {"id": job["id"]},
        )


def expire_leases(job: dict[str, Any]) -> None:
    """What time does to the claims of a worker that died: they lapse."""
    with db.transaction() as conn:
        db.execute(
            conn,
            """UPDATE generation_jobs SET leases = (SELECT COALESCE(jsonb_object_agg(key,
                   jsonb_set(value, '{until}', '"2000-01-01T00:00:00+00:00"')), '{}')
                   FROM jsonb_each(leases)) WHERE id = :id""",
            {"id": job["id"]},
        )
