"""render_image's service: one shot of a job, from claim to recorded image.

In (render-requests): {"job_id": "<uuid>", "index": <1..number_of_shots>}.

Claim the shot, and with OpenAI a model slot in the same transaction (model_slots: refused, the
shot waits in its subscription) → render it from the references' working copies (OpenAI: the
edit endpoint when the job has reference images, so they condition the result; or the Pillow
fallback) → write the JPEG and its thumbnail under names derived from the job (a retry
overwrites, never adds) → in one transaction under the job's row lock: end the model call,
record the row, and complete the job if this was its last shot → publish the image (when the
job's webhook asks for it) and the finish event. Concurrent finishing renders serialise on the
lock, so exactly one sees the last shot. A job finished meanwhile (cancelled, failed), or a
render that lost its claim (a lapsed lease, a cancel and retry), records nothing, and the
objects just written are removed unless another render recorded the shot.

Failure policy: a content-policy refusal or an invalid request fails the job with a clear
message and its code, and so does a reference that is gone (`reference_missing`) or, registered
before working copies existed, past the limits its copy would be made under
(`reference_unusable`). An OpenAI outage that outlasts the client's retries renders the
fallback when OPENAI_FALLBACK_ON_ERROR is true, else raises so Pub/Sub retries the shot. A rate
limit (429) pauses the organisation and raises: the shot is retried, never rendered with the
fallback. Anything else (database, storage, a crash) releases the claim and raises: the
redelivery renders again under the same names; after the subscription's last attempt the
sweeper re-drives or fails the job.
"""

from __future__ import annotations

import io
import mimetypes
import uuid
from dataclasses import dataclass
from typing import Any

from PIL import Image

from shared import config, db, log, storage
from shared.errors import InvalidInput, NotFound
from shared.events import PubSubMessage
from shared.generation import (
    claims,
    codecs,
    fallback_renderer,
    job_events,
    model_slots,
    openai_images,
)
from shared.generation.parameters import MAX_SHOTS, JobParameters
from shared.queries import generated_images, job_runs, jobs, model_calls
from shared.uploads import service as uploads
from shared.vocabulary import FINISHED_STATUSES

FALLBACK_MODEL = "pillow-fallback"
THUMBNAIL_SIDE = 384


@dataclass(frozen=True)
class Shot:
    jpeg: bytes
    size: tuple[int, int]
    preview: Image.Image  # the image, or a cheaper reduced decode of it, for the thumbnail
    method: str  # 'openai' | 'fallback'


def shot_of(message: PubSubMessage) -> tuple[uuid.UUID, int]:
    """The (job, index) a render request names (malformed: permanent)."""
    index = message.data.get("index")
    try:
        job_id = uuid.UUID(str(message.data["job_id"]))
    except (KeyError, ValueError) as exc:
        raise InvalidInput("a render request needs a job_id", code="malformed_event") from exc
    if type(index) is not int or not 1 <= index <= MAX_SHOTS:
        raise InvalidInput(
            f"a render request needs an index from 1 to {MAX_SHOTS}", code="malformed_event"
        )
    return job_id, index


def render_shot(job_id: Any, index: int) -> None:
    """Render and record one shot (see the module docstring)."""
    token = claims.new_token()
    seconds = claims.lease_seconds()
    with db.transaction() as conn:
        job = job_runs.claim_shot(conn, job_id=job_id, index=index, token=token, seconds=seconds)
        if job is not None and config.settings().openai.enabled:
            model_slots.admit(conn, token, seconds)  # ModelBusy rolls the claim back too
    if job is None:
        _refused(job_id, index)
        return
    with claims.held(job_id, index, token):
        try:
            shot = _produce(job, index)
        except (openai_images.ContentRefused, openai_images.ModelRequestInvalid) as error:
            _fail(job_id, index, token, error.message, error.code)
            return
        except NotFound as error:
            message = f"A reference image is no longer available ({error.message})."
            _fail(job_id, index, token, message, "reference_missing")
            return
        except uploads.ImageRejected as error:  # registered before today's limits, and past them
            message = f"A reference image cannot be used ({error.message})."
            _fail(job_id, index, token, message, "reference_unusable")
            return
        name = storage.generated_object_name(job_id, index, job["created_at"])
        thumbnail = storage.thumbnail_object_name(name)
        written = _store(shot, name, thumbnail)
        recorded, orphans, completed = _record(job, index, token, shot, written)
    if not recorded:
        for object_name, generation in written if orphans else ():
            storage.delete(object_name, generation)  # only what this render wrote
        log.info(
            "job finished or claim lost meanwhile: shot discarded",
            action="render.discarded",
            index=index,
        )
        return
    log.info(f"shot {index} recorded", action="render.recorded", index=index, method=shot.method)
    job_events.publish_image(job, index)
    if completed is not None:
        job_events.publish_finished(completed)


def _fail(job_id: Any, index: int, token: str, message: str, code: str) -> None:
    """Fail the job for good, and give back what the claim held (its model slot)."""
    job_events.fail(job_id, message, code)
    claims.release(job_id, index, token)


def _references(job: dict[str, Any]) -> list[openai_images.Reference]:
    """The job's reference images (listed by the claim), read from the bucket: their working
    copies, already at the size the model uses. A reference registered before working copies
    existed gets its copy now, once, within the decode budget of a registration."""
    found = []
    for ref in job["reference_files"]:
        copy = ref["working_copy_path"] or uploads.late_working_copy(ref)
        name = storage.object_name_from_bucket_path(copy)
        content_type = mimetypes.guess_type(name)[0] or "image/jpeg"
        found.append((ref["file_name"], storage.read(name), content_type))
    return found


def _produce(job: dict[str, Any], index: int) -> Shot:
    references = _references(job)
    size = fallback_renderer.image_size(job["aspect_ratio"])
    settings = config.settings().openai
    if settings.enabled:
        try:
            data = openai_images.generate_image(job["generated_prompt"], size, references)
            return _decoded(data)
        except openai_images.ModelRateLimited as limited:
            model_slots.pause(limited.pause_seconds)
            raise
        except openai_images.ModelUnavailable as error:
            if not settings.fallback_on_error:
                raise
            log.warning(f"fallback after: {error.message}", action="render.fallback", index=index)
    spec = fallback_renderer.RenderSpec(
        job_id=str(job["id"]),
        index=index,
        prompt=job["generated_prompt"],
        parameters=JobParameters.of(job),
        references=tuple(codecs.load_reference(data) for _, data, _ in references),
    )
    image = fallback_renderer.render_fallback(spec)
    return Shot(codecs.encode_jpeg(image), image.size, image, "fallback")


def _decoded(data: bytes) -> Shot:
    """The model's image: a JPEG is kept as is, and decoded only at a reduced scale for the
    thumbnail; anything else is decoded and re-encoded."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            size = opened.size
            if opened.format == "JPEG":
                opened.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
                return Shot(data, size, opened.convert("RGB"), "openai")
            image = opened.convert("RGB")
    except (OSError, ValueError) as exc:
        raise openai_images.ModelRequestInvalid(
            "The image service returned no decodable image."
        ) from exc
    return Shot(codecs.encode_jpeg(image), size, image, "openai")


def _store(shot: Shot, name: str, thumbnail: str) -> list[tuple[str, int]]:
    """Write the image and its thumbnail (the names are the job's: a retry overwrites them);
    the (name, generation) of each as written."""
    metadata = {"generation_method": shot.method}
    image = storage.write(name, shot.jpeg, "image/jpeg", metadata)
    preview = codecs.thumbnail_jpeg(shot.preview, THUMBNAIL_SIDE)[0]
    small = storage.write(thumbnail, preview, "image/jpeg", metadata)
    return [(name, image.generation), (thumbnail, small.generation)]


def _record(
    job: dict[str, Any], index: int, token: str, shot: Shot, written: list[tuple[str, int]]
) -> tuple[bool, bool, dict[str, Any] | None]:
    """(recorded, orphaned objects, the job if this shot completed it), under the job's lock.

    The shot is recorded only while this render still holds its claim: giving the claim up is
    the compare-and-set that admits the row. Not recorded: the job is gone or finished, or the
    claim was lost (its lease lapsed, or a cancel or retry cleared it) and the shot belongs to
    another render. The objects then belong to nobody, unless another render recorded the shot
    under the same names first.
    """
    with db.transaction() as conn:
        locked = job_runs.lock(conn, job["id"])
        model_calls.end(conn, token)  # after the job's lock, as the heartbeat takes them
        if not (
            locked is not None
            and locked["status"] == "processing"
            and job_runs.release(conn, job_id=job["id"], key=index, token=token)
        ):
            orphans = locked is None or index in job_runs.missing_shots(conn, job["id"])
            return False, orphans, None
        (name, generation), (thumbnail, thumbnail_generation) = written
        generated_images.record(
            conn,
            job_id=job["id"],
            user_id=job["user_id"],
            session_id=job["session_id"],
            gcp_bucket_path=storage.bucket_path(name),
            gcp_url=storage.canonical_url(name),
            thumbnail_url=storage.canonical_url(thumbnail),
            file_name=name.rsplit("/", 1)[1],
            file_size=len(shot.jpeg),
            width=shot.size[0],
            height=shot.size[1],
            prompt_used=job["generated_prompt"],
            generation_index=index,
            generation_method=shot.method,
            object_generation=generation,
            thumbnail_generation=thumbnail_generation,
        )
        completed = job_runs.complete_if_done(
            conn,
            job_id=job["id"],
            openai_model=config.settings().openai.image_model,
            fallback_model=FALLBACK_MODEL,
            event_lease_seconds=job_events.EVENT_LEASE_SECONDS,
        )
    return True, False, completed


def _refused(job_id: Any, index: int) -> None:
    """The claim was refused: say why, and retry only while another delivery holds it."""
    with db.transaction() as conn:
        job = jobs.get(conn, job_id)
        missing = job_runs.missing_shots(conn, job_id) if job else []
    if job is None:
        log.warning("no such job: acknowledged", action="render.missing")
        return
    if job["status"] == "processing" and index in missing:
        raise claims.busy(f"shot {index}")
    if index <= job["number_of_shots"] and index not in missing:
        job_events.publish_image(job, index)  # it may be what a crash left unpublished
    if job["status"] in FINISHED_STATUSES:
        job_events.flush(job_id)
    else:
        log.info("nothing to render: acknowledged", action="render.duplicate", index=index)
