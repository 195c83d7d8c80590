"""A frontend in a browser against the local stack: the api and the bucket answer CORS for the
development origins `make up` allows (http://localhost:<port>, http://127.0.0.1:<port>) and for no
other, the bucket by GCS's rules for its `cors` field; and a real browser on a dev-server origin
does the direct upload with every header the signed PUT requires and loads a signed image."""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from string import Template
from typing import Any

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests.stack.chromium import CHROMIUM, allowed_ports, needs_chromium
from tests.stack.conftest import Stack
from tools.fixtures import images as make
from tools.fixtures.processes import wait_for
from tools.fixtures.servers import Pages

pytestmark = pytest.mark.stack
DEV = "http://localhost:5173"
OTHER = "http://evil.example"
PNG = make.png()


class Caller:
    """A user of the local api (a fresh one per test)."""

    def __init__(self, stack: Stack) -> None:
        self.api = stack.env["API_URL"]
        answer = requests.get(
            f"{stack.env['TOKEN_ISSUER_URL']}/token",
            params={"user": f"cors-{uuid.uuid4().hex[:8]}"},
            timeout=5,
        )
        self.token = answer.json()["token"]
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = requests.post(f"{self.api}{path}", json=body, headers=self.auth, timeout=10)
        assert answer.status_code in (200, 201), answer.text
        return dict(answer.json())

    def ticket(self) -> dict[str, Any]:
        """A signed PUT for a PNG, in a session: every header the route can require."""
        session = self.post("/v1/sessions", {})
        body = {"file_name": "dot.png", "mime_type": "image/png", "file_size": len(PNG)}
        return self.post("/v1/uploads/signed-url", {**body, "session_id": session["id"]})

    def upload(self, file_name: str) -> dict[str, Any]:
        """The reference image a multipart upload of the PNG made."""
        files = {"file": (file_name, PNG, "image/png")}
        answer = requests.post(f"{self.api}/v1/uploads", files=files, headers=self.auth, timeout=10)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


@pytest.fixture
def caller(stack: Stack) -> Caller:
    return Caller(stack)


def preflight(url: str, origin: str, method: str, headers: str = "") -> requests.Response:
    """What a browser sends before a request that is not simple."""
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return requests.options(url, headers=asked, timeout=10)


def test_the_api_answers_dev_server_origins_and_no_other(stack: Stack, caller: Caller) -> None:
    url = f"{caller.api}/v1/generations"
    for origin in (DEV, "http://127.0.0.1:3000"):
        answer = preflight(url, origin, "POST", "authorization,content-type")
        assert answer.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in answer.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in answer.headers["Access-Control-Allow-Headers"]
    me = requests.get(f"{caller.api}/v1/me", headers={**caller.auth, "Origin": DEV}, timeout=10)
    assert me.status_code == 200 and me.headers["Access-Control-Allow-Origin"] == DEV

    for origin in (OTHER, "https://localhost:5173"):
        refused = preflight(url, origin, "POST", "authorization,content-type")
        assert "Access-Control-Allow-Origin" not in refused.headers
    other = requests.get(
        f"{caller.api}/v1/me", headers={**caller.auth, "Origin": OTHER}, timeout=10
    )
    assert "Access-Control-Allow-Origin" not in other.headers


def test_a_signed_put_with_every_required_header_passes_the_bucket_cors_check(
    stack: Stack, caller: Caller
) -> None:
    ticket = caller.ticket()
    names = sorted(name.lower() for name in ticket["headers"])  # as a browser announces them
    assert names == [
        "content-type",
        "x-goog-content-length-range",
        "x-goog-if-generation-match",
        "x-goog-meta-session-id",
    ]

    answer = preflight(ticket["upload_url"], DEV, "PUT", ",".join(names))

    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == DEV
    assert answer.headers["Access-Control-Allow-Methods"] == "PUT"
    assert answer.headers["Access-Control-Allow-Headers"].split(",") == names
    assert answer.headers["Access-Control-Max-Age"] == "3600"
    assert answer.headers["Vary"] == "Origin"
    put = requests.put(
        ticket["upload_url"], data=PNG, headers={**ticket["headers"], "Origin": DEV}, timeout=10
    )
    assert put.status_code == 200, put.text
    assert put.headers["Access-Control-Allow-Origin"] == DEV
    assert "ETag" in put.headers["Access-Control-Expose-Headers"].split(",")


def test_the_bucket_refuses_other_origins_methods_and_headers(stack: Stack, caller: Caller) -> None:
    url = caller.ticket()["upload_url"]
    for origin, method, headers in (
        (OTHER, "PUT", "content-type"),
        ("http://localhost", "PUT", "content-type"),  # no port: not http://localhost:*
        (DEV, "DELETE", ""),
        (DEV, "PUT", "content-type,x-goog-meta-other"),  # a header the configuration lacks
    ):
        answer = preflight(url, origin, method, headers)
        assert answer.status_code == 200, (origin, method, headers)
        assert not [h for h in answer.headers if h.startswith("Access-Control-")], answer.headers
        assert answer.headers["Vary"] == "Origin"


def test_signed_image_urls_load_from_a_dev_server_origin_only(stack: Stack, caller: Caller) -> None:
    image = caller.upload("dot.png")

    loaded = requests.get(image["url"], headers={"Origin": DEV}, timeout=10)
    other = requests.get(image["url"], headers={"Origin": OTHER}, timeout=10)

    assert loaded.status_code == 200 and loaded.content == PNG
    assert loaded.headers["Access-Control-Allow-Origin"] == DEV
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers


@pytest.fixture
def dev_server() -> Iterator[tuple[str, dict[str, str | bytes]]]:
    """A dev server on a free port of localhost, serving the pages put into the dict."""
    with Pages("text/html; charset=utf-8") as server:
        yield f"http://localhost:{server.port}", server.pages


UPLOAD_PAGE = Template("""<html><body><pre id="out"></pre><script>
const lines = [];
const log = (line) => {
  lines.push(line);
  document.getElementById("out").textContent = lines.join("\\n");
};
(async () => {
  try {
    const auth = {"Authorization": "Bearer $token"};
    const json = {...auth, "Content-Type": "application/json"};
    const session = await (await fetch("$api/v1/sessions", {method: "POST", headers: json,
                                                            body: "{}"})).json();
    const bytes = Uint8Array.from(atob("$png"), (c) => c.charCodeAt(0));
    const asked = {file_name: "dot.png", mime_type: "image/png", file_size: bytes.length,
                   session_id: session.id};
    const ticket = await (await fetch("$api/v1/uploads/signed-url", {
      method: "POST", headers: json, body: JSON.stringify(asked)})).json();
    const put = await fetch(ticket.upload_url, {method: "PUT", headers: ticket.headers,
                                                body: bytes});
    log("put " + put.status + " " + ticket.gcp_bucket_path);
    const image = await fetch("$image");
    log("image " + image.status + " " + (await image.arrayBuffer()).byteLength);
  } catch (error) {
    log("error " + error);
  }
  log("done");
})();
</script></body></html>""")


@needs_chromium
def test_a_browser_on_a_dev_server_uploads_directly_and_loads_a_signed_image(
    stack: Stack, caller: Caller, dev_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    origin, pages = dev_server
    shown = caller.upload("shown.png")
    pages["/upload.html"] = UPLOAD_PAGE.substitute(
        token=caller.token, api=caller.api, png=base64.b64encode(PNG).decode(), image=shown["url"]
    )

    page = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            allowed_ports(stack.env, origin),
            f"--user-data-dir={tmp_path}",
            "--virtual-time-budget=30000",
            "--dump-dom",
            f"{origin}/upload.html",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    ).stdout
    out = page.split('<pre id="out">', 1)[-1].split("</pre>", 1)[0].splitlines()

    assert out[-1:] == ["done"], out
    status, path = out[0].split(" ")[1:]
    assert status == "200", out
    assert out[1] == f"image 200 {len(PNG)}", out
    bucket_name, name = path.split("/", 1)
    client = storage.Client(project=stack.config.project, credentials=AnonymousCredentials())
    blob = wait_for(lambda: client.bucket(bucket_name).get_blob(name), 10, "the uploaded object")
    assert blob.download_as_bytes() == PNG
