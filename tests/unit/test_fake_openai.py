"""The OpenAI fake, driven by the real openai client (no patching)."""

import base64
import io
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import requests
from openai import OpenAI
from PIL import Image

from tools.fake_openai import FakeOpenAI

MODEL = "gpt-image-2"


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def client_for(fake: FakeOpenAI, *, max_retries: int = 0, timeout: float = 10.0) -> OpenAI:
    return OpenAI(base_url=fake.base_url, api_key="test", max_retries=max_retries, timeout=timeout)


def image_bytes(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), "teal").save(out, fmt)
    return out.getvalue()


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def generate(fake: FakeOpenAI, prompt: str = "a lighthouse", **kwargs):
    kwargs = {"model": MODEL, "size": "256x256", **kwargs}
    return client_for(fake).images.generate(prompt=prompt, **kwargs)


@pytest.mark.parametrize(
    ("model", "size", "output_format", "pil_format"),
    [
        (MODEL, "256x256", None, "PNG"),
        (MODEL, "512x256", "jpeg", "JPEG"),
        ("gpt-image-2.5-flare", "256x768", "webp", "WEBP"),
        ("gpt-image-1-mini", "1024x1536", "jpeg", "JPEG"),
    ],
)
def test_generation_returns_the_requested_size_and_format(
    fake, model, size, output_format, pil_format
):
    extra = {"output_format": output_format} if output_format else {}
    response = generate(fake, model=model, size=size, n=2, **extra)

    assert len(response.data) == 2
    width, height = map(int, size.split("x"))
    for item in response.data:
        image = decode(item.b64_json)
        assert (image.size, image.format) == ((width, height), pil_format)
    assert response.size == size
    assert response.output_format == (output_format or "png")
    assert response.usage.output_tokens > 0


def test_images_are_deterministic_per_prompt(fake):
    first = generate(fake, "a red barn").data[0].b64_json
    again = generate(fake, "a red barn").data[0].b64_json
    other = generate(fake, "a blue barn").data[0].b64_json

    assert first == again
    assert first != other


def test_chat_completion_enhances_the_last_user_message(fake):
    completion = client_for(fake).chat.completions.create(
        model="gpt-5-mini",
        messages=[
            {"role": "system", "content": "You enhance prompts."},
            {"role": "user", "content": "a fox in snow"},
        ],
    )

    assert completion.choices[0].message.content.startswith("Cinematic, a fox in snow")
    assert completion.choices[0].finish_reason == "stop"
    assert fake.requests()[-1]["prompt"] == "a fox in snow"


def test_edit_records_reference_images_and_their_content_types(fake):
    response = client_for(fake).images.edit(
        model=MODEL,
        prompt="the same room at night",
        size="256x256",
        image=[
            ("room.png", image_bytes("PNG"), "image/png"),
            ("lamp.jpg", image_bytes("JPEG"), "image/jpeg"),
        ],
    )

    assert decode(response.data[0].b64_json).size == (256, 256)
    [record] = fake.requests()
    assert record["path"] == "/v1/images/edits"
    assert record["reference_images"] == 2
    assert record["reference_content_types"] == ["image/png", "image/jpeg"]
    assert record["reference_sizes"] == [[32, 32], [32, 32]]
    assert record["status"] == 200


def test_edit_refuses_a_part_without_an_image_content_type(fake):
    response = requests.post(
        f"{fake.base_url}/images/edits",
        headers={"Authorization": "Bearer test"},
        data={"model": MODEL, "prompt": "p", "size": "256x256"},
        files=[
            ("image[]", ("ok.png", image_bytes("PNG"), "image/png")),
            ("image[]", ("bad.png", image_bytes("PNG"), "application/octet-stream")),
        ],
        timeout=10,
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unsupported_file_mimetype"
    assert error["param"] == "image[]"
    assert error["type"] == "invalid_request_error"


def test_edit_refuses_bytes_that_are_not_an_image(fake):
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(fake).images.edit(
            model=MODEL, prompt="p", size="256x256", image=("a.png", b"not a png", "image/png")
        )

    assert caught.value.param == "image"


def test_rate_limit_twice_then_success_is_retried_by_the_client(fake):
    fake.add_faults([{"endpoint": "images", "status": 429, "times": 2, "retry_after": 0.01}])

    response = client_for(fake, max_retries=2).images.generate(
        model=MODEL, prompt="p", size="256x256"
    )

    assert response.data[0].b64_json
    records = fake.requests()
    assert [r["status"] for r in records] == [429, 429, 200]
    assert [r["headers"]["x-stainless-retry-count"] for r in records] == ["0", "1", "2"]


def test_scripted_faults_wait_for_their_endpoint(fake):
    fake.add_faults([{"endpoint": "chat", "status": 503}])
    generate(fake)

    with pytest.raises(openai.InternalServerError):
        client_for(fake).chat.completions.create(
            model="gpt-5-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert [r["status"] for r in fake.requests()] == [200, 503]


def test_server_error_without_retries_raises(fake):
    fake.add_faults([{"status": 500}])

    with pytest.raises(openai.InternalServerError):
        generate(fake)
    assert len(fake.requests()) == 1


@pytest.mark.parametrize(
    ("prompt", "error"),
    [
        ("a cat [fake:500]", openai.InternalServerError),
        ("a cat [fake:429]", openai.RateLimitError),
    ],
)
def test_prompt_markers_fail_every_attempt(fake, prompt, error):
    with pytest.raises(error):
        client_for(fake, max_retries=1).images.generate(model=MODEL, prompt=prompt, size="256x256")
    assert len(fake.requests()) == 2


@pytest.mark.parametrize("script", [True, False])
def test_moderation_refusal_is_a_bad_request_and_not_retried(fake, script):
    if script:
        fake.add_faults([{"kind": "moderation_blocked"}])
    prompt = "a castle" if script else "a castle [fake:moderation]"

    with pytest.raises(openai.BadRequestError) as caught:
        client_for(fake, max_retries=2).images.generate(model=MODEL, prompt=prompt, size="256x256")

    assert caught.value.code == "moderation_blocked"
    assert caught.value.type == "image_generation_user_error"
    assert len(fake.requests()) == 1


def test_moderation_answers_one_result_per_text_in_the_real_shape(fake):
    answer = client_for(fake).moderations.create(
        model="omni-moderation-latest", input=["a quiet harbour", "a storm [fake:flag]"]
    )

    assert answer.model == "omni-moderation-2024-09-26"
    calm, flagged = answer.results
    assert not calm.flagged and not any(calm.categories.model_dump().values())
    assert flagged.flagged and flagged.categories.violence
    assert flagged.category_scores.violence > 0.5 > calm.category_scores.violence
    assert flagged.category_applied_input_types.violence == ["text"]
    [record] = fake.requests()
    assert (record["path"], record["input"], record["flagged"]) == (
        "/v1/moderations",
        ["a quiet harbour", "a storm [fake:flag]"],
        True,
    )


def test_moderation_marker_names_the_categories(fake):
    answer = client_for(fake).moderations.create(
        input="x [fake:flag=harassment/threatening,self-harm/intent]"
    )

    categories = answer.results[0].categories.model_dump(by_alias=True)
    assert {name for name, hit in categories.items() if hit} == {
        "harassment/threatening",
        "self-harm/intent",
    }


def test_moderation_of_content_parts_is_one_result(fake):
    answer = client_for(fake).moderations.create(
        input=[{"type": "text", "text": "a"}, {"type": "text", "text": "b [fake:flag]"}]
    )

    assert [r.flagged for r in answer.results] == [True]


def test_moderation_faults_and_unknown_models(fake):
    fake.add_faults([{"endpoint": "moderations", "status": 503}])
    with pytest.raises(openai.InternalServerError):
        client_for(fake).moderations.create(input="a")
    with pytest.raises(openai.NotFoundError):
        client_for(fake).moderations.create(input="a", model="omni-moderation-9")
    assert client_for(fake).moderations.create(input="a").results[0].flagged is False


def test_chat_turns_the_enhanced_flag_marker_into_a_flag(fake):
    completion = client_for(fake).chat.completions.create(
        model="gpt-5-mini", messages=[{"role": "user", "content": "a dog [fake:flag-enhanced]"}]
    )

    assert "[fake:flag]" in completion.choices[0].message.content


def test_response_format_is_refused_for_gpt_image_models(fake):
    with pytest.raises(openai.BadRequestError) as caught:
        generate(fake, response_format="b64_json")

    assert caught.value.param == "response_format"


@pytest.mark.parametrize(
    ("model", "size"),
    [
        (MODEL, "250x250"),  # not divisible by 16
        (MODEL, "1536x256"),  # wider than 3:1
        (MODEL, "4096x2160"),  # longer than 3840
        (MODEL, "2304x2304"),  # both edges above 2160
        (MODEL, "128x128"),  # below the minimum
        (MODEL, "large"),
        ("gpt-image-1.5", "256x256"),  # standard sizes only
        ("gpt-image-1.5", "1536x864"),
    ],
)
def test_invalid_size_is_refused(fake, model, size):
    with pytest.raises(openai.BadRequestError) as caught:
        generate(fake, model=model, size=size)

    assert caught.value.param == "size"


@pytest.mark.parametrize("model", ["dall-e-3", "dall-e-2", "gpt-image-1", "gpt-image-9"])
def test_retired_or_unknown_model_is_not_found(fake, model):
    with pytest.raises(openai.NotFoundError) as caught:
        generate(fake, model=model)

    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize("how", ["config", "marker", "script"])
def test_slow_answer_raises_the_client_timeout(fake, how):
    prompt = "a storm"
    if how == "config":
        fake.configure(latency_seconds=2.0)
    elif how == "marker":
        prompt = "a storm [fake:slow=2]"
    else:
        fake.add_faults([{"kind": "timeout", "seconds": 2.0}])

    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client_for(fake, timeout=0.3).images.generate(model=MODEL, prompt=prompt, size="256x256")
    assert time.monotonic() - started < 1.5


def test_a_scripted_timeout_is_spent_on_one_attempt(fake):
    fake.add_faults([{"kind": "timeout", "seconds": 1.0}])

    client = client_for(fake, max_retries=1, timeout=0.3)
    response = client.images.generate(model=MODEL, prompt="p", size="256x256")

    assert response.data
    assert len(fake.requests()) == 2


def test_concurrent_requests_wait_in_parallel(fake):
    fake.configure(latency_seconds=1.0)
    client = client_for(fake)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        futures = [
            pool.submit(client.images.generate, model=MODEL, prompt=f"p{i}", size="256x256")
            for i in range(10)
        ]
        responses = [future.result() for future in futures]
    elapsed = time.monotonic() - started

    assert all(response.data for response in responses)
    assert elapsed < 3.0
    assert fake.stats() == {"in_flight": 0, "peak_in_flight": 10}


@pytest.mark.parametrize("key", [None, "", "Basic dGVzdA=="])
def test_missing_key_is_unauthenticated(fake, key):
    headers = {} if key is None else {"Authorization": key}
    response = requests.post(
        f"{fake.base_url}/images/generations",
        json={"model": MODEL, "prompt": "p"},
        headers=headers,
        timeout=10,
    )

    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_control_api(fake):
    control = f"{fake.url}/_fake"

    bad = requests.post(f"{control}/faults", json=[{"status": 418}], timeout=10)
    assert bad.status_code == 400
    assert requests.post(f"{control}/faults", json=[{"status": 503}], timeout=10).json() == {
        "pending": 1
    }
    config = requests.post(f"{control}/config", json={"latency_seconds": 0.5}, timeout=10)
    assert config.json() == {"latency_seconds": 0.5}

    started = time.monotonic()
    with pytest.raises(openai.InternalServerError):
        generate(fake)
    assert time.monotonic() - started >= 0.5
    [record] = requests.get(f"{control}/requests", timeout=10).json()["requests"]
    assert (record["model"], record["size"], record["status"]) == (MODEL, "256x256", 503)

    stats = requests.get(f"{control}/stats", timeout=10).json()
    assert stats == {"in_flight": 0, "peak_in_flight": 1}
    assert requests.post(f"{control}/reset", timeout=10).status_code == 200
    assert fake.requests() == [] and fake.stats() == {"in_flight": 0, "peak_in_flight": 0}
    started = time.monotonic()
    generate(fake)
    assert time.monotonic() - started < 0.5


def test_close_does_not_wait_for_sleeping_requests():
    fake = FakeOpenAI().start()
    fake.configure(latency_seconds=30.0)
    caught: list[Exception] = []

    def call() -> None:
        try:
            generate(fake)
        except openai.APIError as error:
            caught.append(error)

    worker = threading.Thread(target=call)
    worker.start()
    while not fake.requests():
        time.sleep(0.01)

    started = time.monotonic()
    fake.close()
    worker.join(timeout=5)

    assert time.monotonic() - started < 2.0
    assert [type(error) for error in caught] == [openai.InternalServerError]


def test_command_line_serves_until_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.fake_openai", "--port", "0"],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready = process.stdout.readline()
        base_url = ready.rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:")
        completion = OpenAI(base_url=base_url, api_key="test", timeout=10).chat.completions.create(
            model="gpt-5-mini", messages=[{"role": "user", "content": "a bridge"}]
        )
        assert completion.choices[0].message.content.startswith("Cinematic, a bridge")

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.stdout.close()
