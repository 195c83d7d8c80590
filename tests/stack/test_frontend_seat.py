"""The frontend's seat on the local stack: every URL a response carries loads from here,
`Prefer: wait` on create answers with the finished job, blocking reads wake when an image lands
and answer 304 when nothing changes, and waiting requests leave the api free for the rest."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.stack.conftest import Stack
from tools.fixtures import images as imagefactory
from tools.fixtures.processes import run_stack, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("running")]  # after test_stack.py
CANONICAL = "https://storage.googleapis.com/"


class Client:
    """One user of the api, with a token from the local issuer."""

    def __init__(self, stack: Stack) -> None:
        self.base = stack.env["API_URL"]
        token = run_stack("token", f"seat-{uuid.uuid4().hex[:8]}", timeout=30).stdout.strip()
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, timeout: float = 30, **kw: Any) -> requests.Response:
        return self.http.request(method, self.base + path, timeout=timeout, **kw)

    def json(self, method: str, path: str, **kw: Any) -> Any:
        answer = self(method, path, **kw)
        assert answer.status_code in (200, 201, 202), (path, answer.status_code, answer.text)
        return answer.json()


@pytest.fixture
def client(stack: Stack) -> Client:
    return Client(stack)


def urls_in(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(field path, URL) of every URL anywhere in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from urls_in(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from urls_in(item, f"{where}[{index}]")
    elif isinstance(value, str) and value.startswith(("http://", "https://")):
        yield where, value


def test_every_url_field_of_every_response_loads_from_here(client: Client) -> None:
    session = client.json("POST", "/v1/sessions", json={"title": "seat"})
    data = imagefactory.jpeg()
    ticket = client.json(
        "POST",
        "/v1/uploads/signed-url",
        json={"file_name": "ref.jpg", "mime_type": "image/jpeg", "file_size": len(data)},
    )
    put = requests.put(ticket["upload_url"], data=data, headers=ticket["headers"], timeout=10)
    assert put.status_code == 200, put.text  # the signed PUT loads too
    files = {"file": ("direct.jpg", imagefactory.jpeg(), "image/jpeg")}
    client.json("POST", "/v1/uploads", files=files, data={"session_id": session["id"]})

    def both() -> list[dict[str, Any]] | None:  # the signed PUT's row comes from the relay
        items: list[dict[str, Any]] = client.json("GET", "/v1/reference-images")["items"]
        return items if len(items) == 2 else None

    references = wait_for(both, 30, "both references")
    job = client.json(
        "POST",
        "/v1/generations",
        json={"prompt": "a lighthouse", "number_of_shots": 2, "session_id": session["id"],
              "reference_image_ids": [references[0]["id"]]},
        headers={"Prefer": "wait=60"},
        timeout=90,
    )  # fmt: skip
    assert job["status"] == "completed" and len(job["images"]) == 2

    reads = [
        "/v1/me",
        "/v1/sessions",
        f"/v1/sessions/{session['id']}",
        f"/v1/sessions/{session['id']}/images",
        f"/v1/sessions/{session['id']}/generations",
        f"/v1/generations/{job['id']}",
        "/v1/reference-images",
        f"/v1/reference-images/{references[0]['id']}",
    ]
    found = [
        (path + field, url) for path in reads for field, url in urls_in(client.json("GET", path))
    ]
    assert {f.split("[")[0].rsplit(".", 1)[-1] for f, _ in found} >= {
        "url", "thumbnail_url", "reference_image_urls",
    }  # fmt: skip
    for field, url in found:
        assert not url.startswith(CANONICAL), f"{field} is a canonical address: {url}"
        loaded = requests.get(url, timeout=10)
        assert loaded.status_code == 200 and loaded.content, (field, url, loaded.status_code)


def test_prefer_wait_on_create_returns_the_finished_job(client: Client) -> None:
    answer = client(
        "POST",
        "/v1/generations",
        json={"prompt": "a fox"},
        headers={"Prefer": "wait=60"},
        timeout=90,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Preference-Applied"] == "wait=60"
    job = answer.json()
    assert job["status"] == "completed" and job["progress"] == {"done": 1, "total": 1}
    assert answer.headers["ETag"]


def test_a_blocking_read_wakes_when_an_image_lands_and_answers_304_when_nothing_changes(
    client: Client,
) -> None:
    session = client.json("POST", "/v1/sessions")
    empty = client("GET", f"/v1/sessions/{session['id']}").headers["ETag"]

    def wait_on_session() -> tuple[requests.Response, float]:
        headers = {"If-None-Match": empty, "Prefer": "wait=50"}
        answer = client("GET", f"/v1/sessions/{session['id']}", headers=headers, timeout=70)
        return answer, time.monotonic()

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(wait_on_session)
        time.sleep(1)  # the read is in and waiting
        assert not waiting.done()
        started = time.monotonic()
        job = client.json(
            "POST", "/v1/generations", json={"prompt": "rain", "number_of_shots": 3,
                                              "session_id": session["id"]},
        )  # fmt: skip
        answer, answered = waiting.result(timeout=70)
    assert answer.status_code == 200 and answer.json()["generated_count"] >= 1
    assert answered - started < 30  # woken by the image, long before its 50 s
    assert answer.headers["ETag"] != empty

    # Follow the job with blocking reads: every answer is a change, until it is done.
    path, tag, seen = f"/v1/generations/{job['id']}", None, []
    while not seen or seen[-1]["status"] != "completed":
        headers = {"If-None-Match": tag, "Prefer": "wait=50"} if tag else {}
        before = time.monotonic()
        answer = client("GET", path, headers=headers, timeout=70)
        assert answer.status_code == 200 and time.monotonic() - before < 30, answer.status_code
        tag = answer.headers["ETag"]
        seen.append(answer.json())
    assert seen[-1]["progress"] == {"done": 3, "total": 3}

    before = time.monotonic()
    unchanged = client("GET", path, headers={"If-None-Match": tag, "Prefer": "wait=2"})
    assert unchanged.status_code == 304 and not unchanged.content
    assert time.monotonic() - before >= 2 and unchanged.headers["ETag"] == tag
    assert client("GET", path, headers={"If-None-Match": tag}).status_code == 304


def test_waiting_requests_leave_the_api_free_for_the_rest(client: Client) -> None:
    session = client.json("POST", "/v1/sessions")
    path = f"/v1/sessions/{session['id']}"
    tag = client("GET", path).headers["ETag"]
    waiters = 30  # more than functions-framework's default threads (4 per core)

    def wait() -> int:
        headers = {"If-None-Match": tag, "Prefer": "wait=6"}
        return client("GET", path, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(waiters) as pool:
        waiting = [pool.submit(wait) for _ in range(waiters)]
        time.sleep(1.5)
        before = time.monotonic()
        assert client("GET", "/v1/me", timeout=5).status_code == 200
        assert time.monotonic() - before < 2
        assert [w.result(timeout=30) for w in waiting] == [304] * waiters
