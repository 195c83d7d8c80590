"""The local web console (web/, served by `make up` on its own origin) in Debian's chromium,
driven by playwright, against the local stack: every flow a person has, through the public API
only and across origins (the console's is neither the api's nor the bucket's, so a missing CORS
header fails here), with what the page sent and received checked where it matters."""

from __future__ import annotations

import io
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from PIL import Image
from playwright.sync_api import (
    Browser,
    Locator,
    Page,
    Request,
    Response,
    expect,
    sync_playwright,
)

from tests.stack.chromium import CHROMIUM, MISSING, allowed_ports
from tests.stack.conftest import Stack
from tools.demo import DEMO_JOB, reference_photo
from tools.fixtures import images as make
from tools.fixtures.processes import run_stack
from tools.fixtures.webhook_receiver import Receiver
from tools.stack import console as console_server
from tools.stack.procs import http_answers

pytestmark = pytest.mark.stack
PNG = make.png(96, 64)
JOB_SECONDS = 120_000  # ms: a job, from the planner's restart on a loaded machine
SCREENSHOT = os.environ.get("CONSOLE_SCREENSHOT")  # where to keep the README's picture
expect.set_options(timeout=30_000)  # what the page shows may take a while on a loaded machine


@pytest.fixture(scope="module", autouse=True)
def running(stack: Stack) -> None:
    """The stack with its console up (another test may have stopped a part of it)."""
    if not all(http_answers(u) for u in (stack.env["CONSOLE_URL"], stack.env["API_URL"])):
        result = run_stack("up")
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Browser]:
    """Debian's chromium (every test that needs it skips without it, naming the install)."""
    if CHROMIUM is None:
        pytest.skip(MISSING)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=[allowed_ports(stack.env)])
        try:
            yield browser
        finally:
            browser.close()


class Console:
    """The console in one tab of a fresh browser profile, and every answer the tab received."""

    def __init__(self, page: Page, stack: Stack, url: str) -> None:
        self.page, self.stack, self.url = page, stack, url
        self.api = stack.env["API_URL"]
        self.bucket = stack.env["STORAGE_EMULATOR_HOST"]
        self.user = f"console-{uuid.uuid4().hex[:8]}"
        self.sent: list[Request] = []
        self.responses: list[Response] = []
        self.problems: list[str] = []
        page.on("request", lambda request: self.sent.append(request))
        page.on("response", lambda answer: self.responses.append(answer))
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.on("console", self._note_refusal)

    def _note_refusal(self, message: Any) -> None:
        if "Content Security Policy" in message.text:  # the page broke its own policy
            self.problems.append(message.text)

    def open(self) -> None:
        self.page.goto(self.url)
        expect(self.page.locator("body")).to_have_attribute("data-ready", "true")

    def sign_in(self, user: str | None = None) -> None:
        self.open()
        self.page.get_by_label("User name").fill(user or self.user)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.locator("#app")).to_be_visible()

    def new_session(self) -> Locator:
        """A new session, selected; its entry in the session list."""
        with self.page.expect_response(self._posted("/v1/sessions")) as created:
            self.page.get_by_role("button", name="New session").click()
        entry = self.session_entry(created.value.json()["id"])
        expect(entry).to_have_class("selected")
        return entry

    def session_entry(self, session_id: str) -> Locator:
        return self.page.locator(f'#session-list li[data-session-id="{session_id}"]')

    def drop(self, name: str, mime_type: str, data: bytes) -> None:
        """Drag a file from the desktop onto the drop zone."""
        files = self.page.evaluate_handle(
            """([name, type, bytes]) => {
                const transfer = new DataTransfer();
                transfer.items.add(new File([new Uint8Array(bytes)], name, {type}));
                return transfer;
            }""",
            [name, mime_type, list(data)],
        )
        zone = self.page.locator("#drop-zone")
        zone.dispatch_event("dragover", {"dataTransfer": files})
        zone.dispatch_event("drop", {"dataTransfer": files})

    def choose(self, name: str, mime_type: str, data: bytes) -> None:
        """Pick a file in the multipart upload's file chooser."""
        chooser = self.page.get_by_label("Or upload through the API (multipart):")
        chooser.set_input_files(files=[{"name": name, "mimeType": mime_type, "buffer": data}])

    def reference(self, file_name: str) -> Locator:
        return self.page.locator("#reference-list li").filter(has_text=file_name)

    def job_card(self, job_id: str) -> Locator:
        return self.page.locator(f'#job-list li[data-job-id="{job_id}"]')

    def generate(self, **fields: str | int | bool | list[str]) -> dict[str, Any]:
        """Fill the generation form with `fields` and send it; the job the API answered."""
        form = self.page.locator("#generate")
        for name, value in fields.items():
            field = form.locator(f'[name="{name}"]')
            if isinstance(value, bool):
                field.set_checked(value)
            elif isinstance(value, list):  # a multiple select
                field.select_option(value)
            elif field.evaluate("e => e.tagName") == "SELECT":
                field.select_option(str(value))
            else:
                field.fill(str(value))
        with self.page.expect_response(self._posted("/v1/generations")) as answer:
            form.get_by_role("button", name="Generate").click()
        assert answer.value.status == 202, answer.value.text()
        return dict(answer.value.json())

    def _posted(self, path: str) -> Callable[[Response], bool]:
        return lambda r: r.request.method == "POST" and r.url == self.api + path

    def answers(self, method: str, pattern: str) -> list[Response]:
        """The answers to `method` requests whose URL matches `pattern`, in order."""
        return [
            r for r in self.responses if r.request.method == method and re.fullmatch(pattern, r.url)
        ]

    def answer_to(self, method: str, pattern: str, action: Callable[[], None]) -> Response:
        """The answer to the `method` request matching `pattern` that `action` makes.

        Waits for that answer itself: the page may show its effect first (the job card follows
        the job by another request), before the answer's event reaches this process.
        """
        with self.page.expect_response(
            lambda r: r.request.method == method and re.fullmatch(pattern, r.url) is not None
        ) as answer:
            action()
        return answer.value

    def images_loaded(self, selector: str) -> int:
        """How many images `selector` finds, once all of them have loaded (fails on a broken one)."""
        self.page.wait_for_function(
            """(selector) => [...document.querySelectorAll(selector)]
                .every((image) => image.complete && image.naturalWidth > 0)""",
            arg=selector,
        )
        return self.page.locator(selector).count()

    def requests(self, method: str, pattern: str) -> list[Request]:
        """The requests sent (answered or not) to `method` URLs matching `pattern`, in order."""
        return [r for r in self.sent if r.method == method and re.fullmatch(pattern, r.url)]

    def errors(self) -> Locator:
        return self.page.get_by_role("alert").locator("li")


@pytest.fixture
def console(browser: Browser, stack: Stack) -> Iterator[Console]:
    context = browser.new_context(viewport={"width": 1200, "height": 820})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        tab = Console(page, stack, stack.env["CONSOLE_URL"])
        yield tab
        assert tab.problems == []  # no script error in the page
    finally:
        context.close()


@pytest.fixture
def planner_paused(stack: Stack) -> Iterator[Callable[[], None]]:
    """plan-generation stopped, so a new job stays pending; calling the fixture's value starts
    it again (as `make up` does), and its waiting messages are pushed to it then."""
    assert run_stack("down", "--only", "plan-generation").returncode == 0
    state = {"paused": True}

    def resume() -> None:
        result = run_stack("up")
        assert result.returncode == 0, result.stdout + result.stderr
        state["paused"] = False

    try:
        yield resume
    finally:
        if state["paused"]:
            resume()


def api_as(stack: Stack, user: str) -> requests.Session:
    """The API as the console's user (the same local issuer, the same name)."""
    token = requests.get(
        f"{stack.env['TOKEN_ISSUER_URL']}/token", params={"user": user}, timeout=10
    ).json()["token"]
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def keep_screenshot(page: Page, path: str) -> None:
    """The README's picture: the page, in 256 colours (a small PNG)."""
    page.set_viewport_size({"width": 1280, "height": 960})
    page.evaluate("window.scrollTo(0, 0)")
    shot = Image.open(io.BytesIO(page.screenshot()))
    small = shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def test_the_console_is_on_its_own_origin_and_printed_by_make_up(stack: Stack) -> None:
    origins = {
        re.sub(r"^(https?://[^/]+).*$", r"\1", stack.env[name])
        for name in ("CONSOLE_URL", "API_URL", "STORAGE_EMULATOR_HOST")
    }
    assert len(origins) == 3  # three origins: every call of the page is a cross-origin one
    result = run_stack("up")  # everything already runs: it says where the console is again
    assert result.returncode == 0
    assert f"==> console {stack.env['CONSOLE_URL']}" in result.stdout


def test_sign_in_as_a_named_user_and_create_rename_and_list_sessions(
    console: Console, stack: Stack
) -> None:
    page = console.page
    console.open()
    expect(page.locator("#app")).to_be_hidden()

    console.sign_in()

    api = api_as(stack, console.user)
    me = api.get(f"{console.api}/v1/me", timeout=10).json()
    expect(page.locator("#account")).to_contain_text(f"Signed in as {console.user} {me['id']}")
    first = console.new_session()
    expect(first).to_contain_text("New Session")
    expect(first).to_contain_text("0 images")

    page.get_by_label("Title").fill("Harbour at dawn")
    page.get_by_role("button", name="Rename").click()
    expect(first).to_contain_text("Harbour at dawn")
    second = console.new_session()

    # THEN the list is the API's, newest activity first, and the person's own
    listed = api.get(f"{console.api}/v1/sessions", timeout=10).json()["items"]
    assert [s["title"] for s in listed] == ["New Session", "Harbour at dawn"]
    entries = page.locator("#session-list li")
    expect(entries).to_have_count(2)
    expect(entries.nth(0)).to_have_attribute("data-session-id", listed[0]["id"])
    expect(entries.nth(1)).to_have_attribute("data-session-id", listed[1]["id"])
    expect(second).to_have_class("selected")

    # AND signing out and in again under the same name finds the same sessions
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("User name")).to_be_visible()
    console.sign_in()
    expect(page.locator("#session-list li")).to_have_count(2)


def test_a_dropped_image_goes_by_signed_put_to_the_bucket_and_shows_once_registered(
    console: Console, stack: Stack
) -> None:
    console.sign_in()
    console.new_session()

    console.drop("harbour.png", "image/png", PNG)

    entry = console.reference("harbour.png")
    expect(entry).to_contain_text("harbour.png · 96×64", timeout=45_000)
    assert console.images_loaded("#reference-list img") == 1
    [ticket] = console.answers("POST", re.escape(console.api) + "/v1/uploads/signed-url")
    [put] = console.answers("PUT", re.escape(console.bucket) + "/.*")
    assert ticket.status == 200 and put.status == 200
    assert put.url == ticket.json()["upload_url"]
    sent = put.request.headers
    for name, value in ticket.json()["headers"].items():
        assert sent[name.lower()] == value  # every header the signature covers, as signed
    assert put.headers["access-control-allow-origin"] == console.url.rstrip("/")  # the bucket's
    assert console.answers("POST", re.escape(console.api) + "/v1/uploads") == []
    # the row comes from the bucket's finalize event, not from the api
    api = api_as(stack, console.user)
    [row] = api.get(f"{console.api}/v1/reference-images", timeout=10).json()["items"]
    assert row["gcp_bucket_path"] == ticket.json()["gcp_bucket_path"]
    assert entry.get_attribute("data-reference-id") == row["id"]


def test_a_chosen_file_is_uploaded_multipart_through_the_api(
    console: Console, stack: Stack
) -> None:
    console.sign_in()
    entry = console.new_session()
    session_id = entry.get_attribute("data-session-id")

    console.choose("pier.jpg", "image/jpeg", make.jpeg(80, 60))

    expect(console.reference("pier.jpg")).to_contain_text("pier.jpg · 80×60")
    [upload] = console.answers("POST", re.escape(console.api) + "/v1/uploads")
    assert upload.status == 201
    assert upload.request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert upload.json()["session_id"] == session_id
    assert console.images_loaded("#reference-list img") == 1


def test_a_four_shot_job_with_every_parameter_is_followed_by_blocking_reads_to_the_gallery(
    console: Console,
    stack: Stack,
    planner_paused: Callable[[], None],
    request: pytest.FixtureRequest,
) -> None:
    # GIVEN a session with a reference picked, and the planner stopped: the job stays pending
    page = console.page
    console.sign_in()
    entry = console.new_session()
    console.choose("lighthouse.jpg", "image/jpeg", reference_photo(1, (480, 320)))
    reference = console.reference("lighthouse.jpg")
    reference.get_by_role("checkbox").check()
    expect(page.locator("#picked")).to_contain_text("1 picked")
    receiver = Receiver()  # on loopback: the stack's one relaxation of the webhook check
    request.addfinalizer(receiver.close)

    # WHEN the person fills in every parameter and generates
    job = console.generate(
        **DEMO_JOB,
        is_custom_enabled=True,
        webhook=receiver.url,
        webhook_events=["image", "completed"],
    )

    [posted] = console.answers("POST", re.escape(console.api) + "/v1/generations")
    assert posted.request.post_data_json == {
        **DEMO_JOB,
        "is_custom_enabled": True,
        "webhook": receiver.url,
        "webhook_events": ["image", "completed"],
        "session_id": entry.get_attribute("data-session-id"),
        "reference_image_ids": [reference.get_attribute("data-reference-id")],
    }
    assert re.fullmatch(r"[0-9a-f-]{36}", posted.request.headers["idempotency-key"])
    card = console.job_card(job["id"])
    expect(card).to_have_attribute("data-status", "pending")
    expect(card).to_contain_text("wide · low angle · cinematic")
    expect(card).to_contain_text("4 shots · 1 reference · custom")
    job_url = re.escape(f"{console.api}/v1/generations/{job['id']}")

    deadline = time.monotonic() + 30
    while not any("if-none-match" in r.headers for r in console.requests("GET", job_url)):
        assert time.monotonic() < deadline, "the console sent no blocking read"
        page.wait_for_timeout(100)  # the page's events come in while playwright is called
    planner_paused()

    # THEN the card follows the job to completion, and the gallery and the session list show it
    expect(card).to_have_attribute("data-status", "completed", timeout=JOB_SECONDS)
    expect(card.locator(".done")).to_have_text("4/4")
    expect(page.locator("#gallery li")).to_have_count(4)
    assert console.images_loaded("#gallery img") == 4
    expect(entry).to_contain_text("4 images")
    assert console.images_loaded(f"{entry_selector(entry)} img") == 1
    assert console.images_loaded(f'#job-list li[data-job-id="{job["id"]}"] .shots img') == 4
    types = [r.payload()["type"] for r in receiver.wait(5, timeout=JOB_SECONDS)]
    assert sorted(types) == ["generation.completed"] + ["generation.image"] * 4

    # AND it was followed by blocking reads, each answered by a change, never by a polling loop
    reads = console.answers("GET", job_url)
    assert "if-none-match" not in reads[0].request.headers
    etag = reads[0].headers["etag"]
    for read in reads[1:]:
        assert read.request.headers["if-none-match"] == etag
        assert read.request.headers["prefer"] == "wait=50"
        if read.status == 304:  # nothing changed within the wait: only after the full wait
            assert waited_seconds(read) >= 45
            continue
        assert read.status == 200 and read.headers["etag"] != etag
        etag = read.headers["etag"]
    assert reads[-1].json()["status"] == "completed"
    # the first blocking read was sent while the planner was down: it waited for the restart
    assert len(reads) >= 2 and waited_seconds(reads[1]) >= 1.0, [
        (r.status, waited_seconds(r)) for r in reads
    ]

    if SCREENSHOT:
        keep_screenshot(page, SCREENSHOT)


def entry_selector(entry: Locator) -> str:
    return f'#session-list li[data-session-id="{entry.get_attribute("data-session-id")}"]'


def waited_seconds(answer: Response) -> float:
    """How long the API took to answer (request sent to first byte of the answer)."""
    timing = answer.request.timing
    return (timing["responseStart"] - timing["requestStart"]) / 1000


def test_cancel_and_retry_from_the_job_card(
    console: Console, stack: Stack, planner_paused: Callable[[], None]
) -> None:
    console.sign_in()
    console.new_session()
    job = console.generate(prompt="A quiet harbour", number_of_shots=2)
    card = console.job_card(job["id"])
    expect(card).to_have_attribute("data-status", "pending")

    job_url = re.escape(f"{console.api}/v1/generations/{job['id']}")
    cancel = console.answer_to(
        "POST", job_url + "/cancel", card.get_by_role("button", name="Cancel").click
    )

    assert cancel.status == 200
    expect(card).to_have_attribute("data-status", "cancelled")
    expect(card.get_by_role("button", name="Cancel")).to_have_count(0)

    retry = console.answer_to(
        "POST", job_url + "/retry", card.get_by_role("button", name="Retry").click
    )

    assert retry.status == 202
    expect(card).to_have_attribute("data-status", "pending")
    planner_paused()
    expect(card).to_have_attribute("data-status", "completed", timeout=JOB_SECONDS)
    expect(card.locator(".done")).to_have_text("2/2")
    expect(console.page.locator("#gallery li")).to_have_count(2)


def test_delete_an_image_a_reference_and_a_session(console: Console, stack: Stack) -> None:
    # GIVEN a session with a finished 2-shot job and a reference, made through the API
    api_url = stack.env["API_URL"]
    api = api_as(stack, console.user)
    session = api.post(f"{api_url}/v1/sessions", json={"title": "To tidy"}, timeout=10).json()
    job = api.post(
        f"{api_url}/v1/generations",
        json={"prompt": "Two gulls", "number_of_shots": 2, "session_id": session["id"]},
        headers={"Prefer": "wait=60"},
        timeout=90,
    ).json()
    assert job["status"] == "completed", job
    files = {"file": ("gull.png", PNG, "image/png")}
    api.post(f"{api_url}/v1/uploads", files=files, timeout=10).raise_for_status()
    console.sign_in()
    entry = console.session_entry(session["id"])
    expect(entry).to_contain_text("2 images")
    gallery = console.page.locator("#gallery li")
    expect(gallery).to_have_count(2)

    # WHEN the person deletes one image, THEN the gallery and the session's count follow
    doomed = gallery.first.get_attribute("data-image-id")
    gallery.first.get_by_role("button", name="Delete").click()
    expect(gallery).to_have_count(1)
    expect(entry).to_contain_text("1 image")
    assert (
        api.get(f"{api_url}/v1/sessions/{session['id']}", timeout=10).json()["generated_count"] == 1
    )
    assert doomed not in {i["id"] for i in api.get(f"{api_url}/v1/sessions/{session['id']}/images",
                                                   timeout=10).json()["items"]}  # fmt: skip

    # WHEN the reference is deleted, THEN it leaves the library
    console.reference("gull.png").get_by_role("button", name="Delete").click()
    expect(console.reference("gull.png")).to_have_count(0)
    assert api.get(f"{api_url}/v1/reference-images", timeout=10).json()["items"] == []

    # WHEN the session is deleted (after the confirmation), THEN it is gone, here and in the API
    console.page.get_by_role("button", name="Delete session").click()
    expect(entry).to_have_count(0)
    expect(console.page.locator("#no-session")).to_be_visible()
    gone = api.get(f"{api_url}/v1/sessions/{session['id']}", timeout=10)
    assert gone.status_code == 404


def test_api_errors_are_shown_to_the_person(console: Console, stack: Stack) -> None:
    console.sign_in()
    console.new_session()
    errors = console.errors()

    form = console.page.locator("#generate")
    form.locator('[name="prompt"]').fill("   ")  # not empty, so the browser lets it through
    form.get_by_role("button", name="Generate").click()
    expect(errors.first).to_contain_text(
        "POST /v1/generations: 400 invalid_input: the body has invalid fields (prompt:"
    )

    console.choose("broken.png", "image/png", make.truncated(PNG))
    expect(errors.first).to_contain_text("POST /v1/uploads: 422")

    console.drop("notes.txt", "text/plain", b"not an image")
    expect(errors.first).to_contain_text("POST /v1/uploads/signed-url: 400 invalid_input")
    expect(errors.first).to_contain_text("mime_type")

    expect(errors).to_have_count(3)
    errors.first.get_by_role("button", name="Dismiss").click()
    expect(errors).to_have_count(2)
    expect(console.page.locator("#reference-list li")).to_have_count(0)


def test_an_origin_the_api_does_not_answer_cors_for_sees_the_refusal(
    browser: Browser, stack: Stack
) -> None:
    # GIVEN the same console served from an origin outside CORS_ORIGINS
    server = console_server.server(stack.config, stack.spec, host="127.0.0.2", port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        tab = Console(page, stack, f"http://127.0.0.2:{server.server_address[1]}/")

        tab.open()
        page.get_by_label("User name").fill(tab.user)
        page.get_by_role("button", name="Sign in").click()

        # THEN the browser refuses the API's answer, and the person is told so
        expect(tab.errors().first).to_contain_text(
            f"GET /v1/me: network_error: could not reach {tab.api}"
        )
        expect(tab.errors().first).to_contain_text("does it answer CORS for http://127.0.0.2:")
        expect(page.locator("#app")).to_be_hidden()
    finally:
        context.close()
        server.shutdown()
        server.server_close()
