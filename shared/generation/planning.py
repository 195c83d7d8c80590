"""plan_generation's service: a pending job becomes one render message per shot.

In (generation-requests): {"job_id": "<uuid>"}. Out (render-requests), one per missing shot:
{"job_id": "<uuid>", "index": <1..number_of_shots>}.

Claim the plan → write `generated_prompt`, set `processing` and `started_at` → publish the
start (to generation-events, when the job's webhook asks for it) and the render messages →
mark the job dispatched. A redelivery after a crash anywhere in between finishes the plan (the
prompt is written once; renders are idempotent per shot); a duplicate while another delivery
holds the claim is retried later; one after dispatch, or for a finished job, is acknowledged.

The prompt: a deterministic brief built from the prompt and every parameter; with OpenAI
configured, the text model rewrites it. Prompt enhancement is an embellishment, so a refusal
or an invalid answer falls back to the brief, and so does an outage when
OPENAI_FALLBACK_ON_ERROR is true (otherwise the outage is retried).

Moderation before spend (moderation.py): with OpenAI configured, the request's texts are
moderated before the enhancer is asked, and the enhanced prompt before any image is; flagged,
the job fails at once with code `content_policy`. A moderation outage is always retried.
"""

from __future__ import annotations

import uuid
from typing import Any

from shared import config, db, log, pubsub
from shared.errors import InvalidInput
from shared.events import PubSubMessage
from shared.generation import claims, job_events, moderation, openai_images
from shared.generation.openai_images import ContentRefused, ModelRequestInvalid, ModelUnavailable
from shared.generation.parameters import JobParameters
from shared.queries import job_runs, jobs
from shared.vocabulary import FINISHED_STATUSES


def job_id_of(message: PubSubMessage) -> uuid.UUID:
    """The job a generation request names (malformed: permanent)."""
    try:
        return uuid.UUID(str(message.data["job_id"]))
    except (KeyError, ValueError) as exc:
        raise InvalidInput("a generation request needs a job_id", code="malformed_event") from exc


def _words(value: str | None) -> str | None:
    return value.replace("_", " ") if value else None


def brief(asked: JobParameters) -> str:
    """The prompt and every parameter as one deterministic text."""
    parts = [asked.prompt.strip().rstrip(".") + "."]
    framing = [
        f"{_words(asked.shot_type)} shot" if asked.shot_type else None,
        f"{_words(asked.camera_angle)} camera angle" if asked.camera_angle else None,
        f"{_words(asked.style)} style" if asked.style else None,
    ]
    if any(framing):
        parts.append(", ".join(f for f in framing if f).capitalize() + ".")
    for label in ("location", "lighting", "weather"):
        setting = getattr(asked, label)
        if setting:
            parts.append(f"{label.capitalize()}: {setting.strip()}.")
    parts.append(f"Aspect ratio {asked.aspect_ratio}.")
    return " ".join(parts)


def write_prompt(asked: JobParameters) -> str:
    """The job's prompt: moderated, then the text model's or the brief itself (see the module
    docstring); ContentRefused when moderation flags it."""
    text = brief(asked)
    settings = config.settings().openai
    if not settings.enabled:
        return text
    moderation.check(
        [t for t in (asked.prompt, asked.location, asked.lighting, asked.weather) if t]
    )
    enhanced = _enhanced(text, settings.fallback_on_error)
    if enhanced != text:
        moderation.check([enhanced])
    return enhanced


def _enhanced(text: str, fallback_on_error: bool) -> str:
    try:
        return openai_images.enhance_prompt(text) or text
    except (ModelUnavailable, openai_images.ModelRateLimited) as error:
        if not fallback_on_error:
            raise
        log.warning(f"prompt enhancement skipped: {error.message}", action="plan.template")
    except ModelRequestInvalid as error:
        log.warning(f"prompt enhancement refused: {error.message}", action="plan.template")
    return text


def plan(job_id: Any) -> None:
    """Plan one job (see the module docstring)."""
    token = claims.new_token()
    with db.transaction() as conn:
        job = job_runs.claim_plan(conn, job_id=job_id, token=token, seconds=claims.lease_seconds())
    if job is None:
        _refused(job_id)
        return
    with claims.held(job_id, "plan", token):
        if job["status"] == "pending":
            try:
                prompt = job["generated_prompt"] or write_prompt(JobParameters.of(job))
            except (ContentRefused, ModelRequestInvalid) as refused:  # moderation said no
                job_events.fail(job_id, refused.message, refused.code)
                return
            with db.transaction() as conn:
                job = job_runs.start(conn, job_id=job_id, token=token, generated_prompt=prompt)
            if job is None:
                return  # cancelled (or taken over) while the prompt was written
        with db.transaction() as conn:
            missing = job_runs.missing_shots(conn, job_id)
        job_events.publish_started(job)
        topic = config.settings().topics.render_requests
        pubsub.publish_many(topic, [{"job_id": str(job_id), "index": i} for i in missing])
        with db.transaction() as conn:
            job_runs.mark_dispatched(conn, job_id=job_id, token=token)
    log.info(f"planned {len(missing)} shots", action="plan.dispatched", shots=len(missing))


def _refused(job_id: Any) -> None:
    """The claim was refused: say why, and retry only while another delivery holds it."""
    with db.transaction() as conn:
        job = jobs.get(conn, job_id)
    if job is None:
        log.warning("no such job: acknowledged", action="plan.missing")
    elif job["status"] in FINISHED_STATUSES:
        job_events.flush(job_id)
    elif job["status"] == "pending" or job["dispatched_at"] is None:
        raise claims.busy("the plan")
    else:
        log.info("already planned: acknowledged", action="plan.duplicate")
