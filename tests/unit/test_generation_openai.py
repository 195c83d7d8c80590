"""The OpenAI side of generation jobs, driven through the real client against the fake server;
message parsing and the prompt brief. No database."""

from __future__ import annotations

import time
import uuid

import httpx2
import openai
import pytest

from infra import manifest
from shared import config
from shared.errors import InvalidInput
from shared.events import PubSubMessage
from shared.generation import openai_images, planning, rendering
from shared.generation.parameters import JobParameters
from tools.fixtures import images as imagefactory
from tools.fixtures.cloud import reset_clients

JOB = JobParameters.model_construct(
    prompt=" a lighthouse at dusk. ",
    shot_type="extreme_wide",
    camera_angle="low_angle",
    location="Brittany",
    weather="light rain",
    aspect_ratio="16:9",
)


@pytest.fixture
def fake(fake_openai, monkeypatch):
    """The fake, with one client retry and a one-second timeout; no database."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("OPENAI_MAX_RETRIES", "1")
    monkeypatch.setenv("OPENAI_TIMEOUT_SECONDS", "1")
    reset_clients()
    return fake_openai


def test_the_client_is_made_once_with_the_configured_timeout_and_retries(fake):
    client = openai_images.client()
    assert openai_images.client() is client
    assert (client.timeout, client.max_retries) == (1.0, 1)
    assert str(client.base_url).rstrip("/") == fake.base_url


def test_shots_without_references_are_generated_in_the_exact_size_as_jpeg(fake):
    data = openai_images.generate_image("a fox", (1536, 864), [])
    (call,) = fake.requests()
    assert call["path"] == "/v1/images/generations"
    assert (call["size"], call["output_format"], call["n"]) == ("1536x864", "jpeg", 1)
    assert call["model"] == config.settings().openai.image_model
    assert data[:2] == b"\xff\xd8"


def test_references_go_to_the_edit_endpoint_as_image_files(fake):
    refs = [
        ("a.png", imagefactory.png(), "image/png"),
        ("b.jpg", imagefactory.jpeg(), "image/jpeg"),
    ]
    openai_images.generate_image("a fox", (1024, 1024), refs)
    (call,) = fake.requests()
    assert call["path"] == "/v1/images/edits"
    assert call["reference_content_types"] == ["image/png", "image/jpeg"]


def test_a_content_policy_refusal_is_permanent_and_not_retried(fake):
    with pytest.raises(openai_images.ContentRefused) as caught:
        openai_images.generate_image("x [fake:moderation]", (1024, 1024), [])
    assert not caught.value.retryable and "content policy" in caught.value.message
    assert len(fake.requests()) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_outages_are_retried_by_the_client_then_unavailable(fake, status):
    fake.add_faults([{"endpoint": "images", "status": status, "times": 2, "retry_after": 0}])
    with pytest.raises(openai_images.ModelUnavailable) as caught:
        openai_images.generate_image("a fox", (1024, 1024), [])
    assert caught.value.retryable
    assert [c["status"] for c in fake.requests()] == [status, status]  # 1 try + 1 retry


def test_a_rate_limit_beyond_the_retries_says_how_long_the_organisation_waits(fake):
    fake.add_faults([{"endpoint": "images", "status": 429, "times": 2, "retry_after": 0.4}])
    with pytest.raises(openai_images.ModelRateLimited) as caught:
        openai_images.generate_image("a fox", (1024, 1024), [])
    assert caught.value.retryable and not isinstance(caught.value, openai_images.ModelUnavailable)
    assert caught.value.pause_seconds == 0.4
    assert [c["status"] for c in fake.requests()] == [429, 429]


def _rate_limit_error(code: str, retry_after: str | None) -> openai.RateLimitError:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    response = httpx2.Response(
        429, headers=headers, request=httpx2.Request("POST", "https://api.openai.com/v1/images")
    )
    return openai.RateLimitError("limited", response=response, body={"code": code})


def test_a_429_pauses_within_bounds_and_an_exhausted_quota_is_an_outage():
    assert openai_images.translate(
        _rate_limit_error("rate_limit_exceeded", None)
    ).pause_seconds == (openai_images.RATE_LIMIT_PAUSE_SECONDS)
    longest = openai_images.translate(_rate_limit_error("rate_limit_exceeded", "3600"))
    assert longest.pause_seconds == openai_images.MAX_RATE_LIMIT_PAUSE_SECONDS
    assert longest.retry_after == round(openai_images.MAX_RATE_LIMIT_PAUSE_SECONDS)
    quota = openai_images.translate(_rate_limit_error("insufficient_quota", "1"))
    assert isinstance(quota, openai_images.ModelUnavailable)  # billing: the fallback's case


def test_a_timeout_is_unavailable_within_the_configured_budget(fake):
    fake.add_faults([{"endpoint": "images", "kind": "timeout", "seconds": 5, "times": 2}])
    started = time.monotonic()
    with pytest.raises(openai_images.ModelUnavailable):
        openai_images.generate_image("a fox", (1024, 1024), [])
    assert time.monotonic() - started < 4  # 2 attempts of 1 s and a back-off, not 5 s each


def test_an_outage_that_heals_within_the_retries_succeeds(fake):
    fake.add_faults([{"endpoint": "images", "status": 500}])
    assert openai_images.generate_image("a fox", (1024, 1024), [])


def test_an_unknown_model_is_an_invalid_request(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_IMAGE_MODEL", "dall-e-3")
    reset_clients()
    with pytest.raises(openai_images.ModelRequestInvalid) as caught:
        openai_images.generate_image("a fox", (1024, 1024), [])
    assert "404" in caught.value.message and not caught.value.retryable


def test_prompt_enhancement_keeps_markers_and_falls_back_to_the_brief(fake):
    job = JOB.model_copy(update={"prompt": "a fox [fake:slow=0]"})
    enhanced = planning.write_prompt(job)
    assert enhanced.startswith("Cinematic, ") and "[fake:slow=0]" in enhanced
    fake.add_faults([{"endpoint": "chat", "status": 500, "times": 2}])
    assert planning.write_prompt(job) == planning.brief(job)  # OPENAI_FALLBACK_ON_ERROR: true


def test_without_fallback_an_enhancement_outage_is_retried(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_FALLBACK_ON_ERROR", "false")
    reset_clients()
    fake.add_faults([{"endpoint": "chat", "status": 503, "times": 2}])
    with pytest.raises(openai_images.ModelUnavailable):
        planning.write_prompt(JOB)


def test_the_brief_states_every_parameter_deterministically():
    assert planning.brief(JOB) == (
        "a lighthouse at dusk. Extreme wide shot, low angle camera angle. "
        "Location: Brittany. Weather: light rain. Aspect ratio 16:9."
    )


def test_the_retry_budget_fits_the_functions_timeouts():
    settings = config.load({"DATABASE_URL": "postgresql://x@127.0.0.1/x"})
    spec = manifest.load()
    attempts = settings.openai.max_retries + 1
    backoff = 8.0 * settings.openai.max_retries  # the client's longest back-off between tries
    image_budget = attempts * settings.openai.timeout_seconds + backoff
    text_budget = attempts * openai_images.TEXT_TIMEOUT_SECONDS + backoff
    assert image_budget < spec.function("render-image").timeout_seconds
    assert text_budget < spec.function("plan-generation").timeout_seconds
    assert settings.render_lease_seconds < spec.function("render-image").timeout_seconds


def test_messages_are_parsed_strictly():
    job_id = uuid.uuid4()
    message = PubSubMessage("1", {"job_id": str(job_id), "index": 3})
    assert planning.job_id_of(message) == job_id
    assert rendering.shot_of(message) == (job_id, 3)
    for data in (
        {},
        {"job_id": "nope"},
        {"job_id": str(job_id), "index": "3"},
        {"job_id": str(job_id), "index": 11},
    ):
        with pytest.raises(InvalidInput):
            rendering.shot_of(PubSubMessage("1", data))
    with pytest.raises(InvalidInput):
        planning.job_id_of(PubSubMessage("1", {"job": 1}))


def test_a_model_jpeg_is_kept_and_anything_else_becomes_one():
    jpeg = imagefactory.jpeg(1536, 864)
    kept = rendering._decoded(jpeg)
    assert kept.jpeg == jpeg and kept.size == (1536, 864)
    assert max(kept.preview.size) < 1536  # decoded at a reduced scale, for the thumbnail only
    converted = rendering._decoded(imagefactory.png(640, 480))
    assert converted.jpeg[:2] == b"\xff\xd8" and converted.size == (640, 480)
    with pytest.raises(openai_images.ModelRequestInvalid):
        rendering._decoded(b"not an image")
