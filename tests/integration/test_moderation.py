"""Moderation before spend, in plan_generation: the OpenAI fake through the real client, on a
real PostgreSQL and the emulators."""

from __future__ import annotations

import pytest

from shared.generation import openai_images, planning, service
from tests.integration.jobs import current, images_of, run_job, submit


def paths(fake) -> list[str]:
    return [r["path"] for r in fake.requests()]


def test_a_flagged_prompt_fails_the_job_before_anything_is_paid_for(fake, cloud):
    job = submit(prompt="a duel [fake:flag=violence,harassment/threatening]", number_of_shots=3)

    planning.plan(job["id"])

    failed = current(job)
    assert (failed["status"], failed["error_code"]) == ("failed", "content_policy")
    assert "harassment/threatening, violence" in failed["error_message"]
    assert paths(fake) == ["/v1/moderations"]  # no enhancement, no image
    assert cloud.messages("render-requests", job["id"], timeout=1) == []
    (event,) = cloud.messages("generation-events", job["id"], at_least=1)
    assert (event["status"], event["error_code"]) == ("failed", "content_policy")
    shown = service.job_resource(job["id"])
    assert (shown["error_code"], shown["error_message"]) == (
        "content_policy",
        failed["error_message"],
    )


def test_every_text_of_the_request_is_moderated_at_once(fake, cloud):
    job = submit(prompt="a quiet street", location="a market [fake:flag]", weather="rain")

    planning.plan(job["id"])

    assert current(job)["error_code"] == "content_policy"
    (moderated,) = fake.requests()
    assert moderated["input"] == ["a quiet street", "a market [fake:flag]", "rain"]
    assert moderated["model"] == "omni-moderation-latest"


def test_a_flagged_enhanced_prompt_fails_the_job_before_any_image(fake, cloud):
    job = submit(prompt="a dog in a park [fake:flag-enhanced]", number_of_shots=2)

    planning.plan(job["id"])

    assert current(job)["error_code"] == "content_policy"
    assert paths(fake) == ["/v1/moderations", "/v1/chat/completions", "/v1/moderations"]
    assert "[fake:flag]" in fake.requests()[2]["input"][0]  # the text model's answer


def test_a_moderation_outage_is_retried_and_then_the_job_completes(fake, cloud):
    # GIVEN moderation down for longer than the client's retries (none here)
    job = submit(number_of_shots=1)
    fake.add_faults([{"endpoint": "moderations", "status": 503}])

    # WHEN the plan runs, it raises (Pub/Sub redelivers), with the fallback setting on or not
    with pytest.raises(openai_images.ModelUnavailable):
        planning.plan(job["id"])
    assert (current(job)["status"], current(job)["leases"]) == ("pending", {})
    assert paths(fake) == ["/v1/moderations"]

    # THEN the redelivery moderates, plans, and the job completes
    done = run_job(cloud, job)
    assert (done["status"], done["generation_method"]) == ("completed", "openai")
    assert paths(fake)[1:] == [
        "/v1/moderations",
        "/v1/chat/completions",
        "/v1/moderations",
        "/v1/images/generations",
    ]
    assert len(images_of(job)) == 1


def test_without_openai_nothing_is_moderated(cloud):
    job = submit(prompt="a duel [fake:flag]", number_of_shots=1)  # no fake: no key, no client
    assert run_job(cloud, job)["status"] == "completed"
    assert openai_images._client is None
