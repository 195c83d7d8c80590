"""`make demo`: the main job end to end on the local stack, through the public HTTP API only.

Starts the stack, signs in with a local token, creates a session, uploads two reference images
(one by signed URL, registered by the bucket event; one by multipart POST), asks for a 4-shot
generation, follows it with a progress bar (blocking reads: `If-None-Match` and
`Prefer: wait=30`, no polling), prints the session and the job, and writes
out/index.html: a contact sheet of every reference and result with its parameters.

    python -m tools.demo [--keep-running] [--out out] [--timeout 300]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from PIL import Image, ImageDraw, ImageFilter

from tools import contact_sheet

ROOT = Path(__file__).resolve().parent.parent
STACK_ENV = ROOT / ".local" / "stack.env"
STEPS = 8
# The demo's job: every parameter set (the console's browser test and the render bench use it too).
DEMO_JOB = {
    "prompt": "A lonely lighthouse on a rocky coast as a storm rolls in, keeper's window glowing",
    "shot_type": "wide",
    "camera_angle": "low_angle",
    "style": "cinematic",
    "location": "North Atlantic coast",
    "lighting": "golden hour",
    "weather": "stormy",
    "aspect_ratio": "16:9",
    "number_of_shots": 4,
}


class StepFailed(Exception):
    """A demo step failed; the message says which and why."""


class Api:
    """A thin client of the public HTTP API, as a frontend would use it."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, expected: int, **kwargs: Any) -> Any:
        response = self.http.request(method, self.base_url + path, timeout=30, **kwargs)
        if response.status_code != expected:
            raise StepFailed(
                f"{method} {path} answered {response.status_code}: {response.text[:500]}"
            )
        return response.json() if response.content else None

    def changed(self, path: str, etag: str | None, wait: int) -> tuple[Any, str | None]:
        """GET `path` once it differs from `etag` (a blocking read of up to `wait` s): the new
        body and ETag, or (None, etag) when nothing changed in that time (304)."""
        headers = {"Prefer": f"wait={wait}"}
        if etag:
            headers["If-None-Match"] = etag
        response = self.http.get(self.base_url + path, headers=headers, timeout=wait + 30)
        if response.status_code == 304:
            return None, etag
        if response.status_code != 200:
            raise StepFailed(f"GET {path} answered {response.status_code}: {response.text[:500]}")
        return response.json(), response.headers.get("ETag")


def step(number: int, title: str) -> None:
    print(f"\n[{number}/{STEPS}] {title}", flush=True)


def stack_env() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in STACK_ENV.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def run_stack(*args: str, capture: bool = False) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tools.stack", *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    if result.returncode != 0:
        raise StepFailed(f"`python -m tools.stack {' '.join(args)}` failed (see above)")
    return result.stdout or ""


def stack_was_running() -> bool:
    return (
        subprocess.run(
            [sys.executable, "-m", "tools.stack", "status"], cwd=ROOT, capture_output=True
        ).returncode
        == 0
    )


def reference_photo(seed: int, size: tuple[int, int] = (960, 640)) -> bytes:
    """A synthetic but photo-like reference: sky, sea, a lighthouse; JPEG bytes."""
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    top, bottom = (
        ((255, 170, 110), (60, 70, 140)) if seed % 2 else ((120, 180, 235), (235, 240, 250))
    )
    for y in range(height):
        t = y / height
        draw.line(
            [(0, y), (width, y)],
            fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    draw.rectangle([0, int(height * 0.68), width, height], fill=(30, 70, 110))
    x = int(width * (0.3 + 0.4 * (seed % 3) / 2))
    draw.polygon(
        [
            (x - 30, int(height * 0.7)),
            (x + 30, int(height * 0.7)),
            (x + 16, int(height * 0.3)),
            (x - 16, int(height * 0.3)),
        ],
        fill=(240, 240, 235),
    )
    draw.rectangle([x - 20, int(height * 0.26), x + 20, int(height * 0.3)], fill=(200, 40, 40))
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def progress_bar(done: int, total: int, status: str, width: int = 30) -> str:
    filled = int(width * done / total) if total else 0
    return f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {status:<10}"


def upload_by_signed_url(api: Api, session_id: str, data: bytes) -> dict[str, Any]:
    ticket = api.call(
        "POST",
        "/v1/uploads/signed-url",
        200,
        json={
            "file_name": "harbour at dawn.jpg",
            "mime_type": "image/jpeg",
            "file_size": len(data),
            "session_id": session_id,
        },
    )
    put = requests.put(ticket["upload_url"], data=data, headers=ticket["headers"], timeout=30)
    if put.status_code not in (200, 201):
        raise StepFailed(f"signed PUT answered {put.status_code}: {put.text[:300]}")
    print(
        f"  PUT {len(data):,} bytes to the bucket; waiting for the finalize event to register it ..."
    )

    def registered() -> dict[str, Any] | None:
        for item in api.call("GET", "/v1/reference-images?limit=50", 200)["items"]:
            if item["gcp_bucket_path"] == ticket["gcp_bucket_path"]:
                return item
        return None

    return wait_for("the uploaded reference to be registered", registered, 30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--keep-running", action="store_true", help="leave the local stack running")
    parser.add_argument("--out", type=Path, default=ROOT / "out")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the job")
    args = parser.parse_args(argv)
    already_running = stack_was_running()
    current = "start"
    try:
        current = "start the local stack"
        step(
            1,
            "starting the local stack (PostgreSQL, Pub/Sub emulator, GCS emulator, functions) ...",
        )
        run_stack("up")
        env = stack_env()
        openai_on = bool(os.environ.get("OPENAI_API_KEY"))
        print(
            "  images come from "
            + (
                f"OpenAI ({os.environ.get('OPENAI_BASE_URL', 'api.openai.com')})"
                if openai_on
                else "the Pillow fallback (OPENAI_API_KEY is not set)"
            )
        )

        current = "sign in and create a session"
        step(2, "signing in with a local token and creating a session ...")
        user = f"demo-{uuid.uuid4().hex[:6]}"
        api = Api(env["API_URL"], run_stack("token", user, capture=True).strip())
        me = api.call("GET", "/v1/me", 200)
        session = api.call("POST", "/v1/sessions", 201, json={"title": "Lighthouse storyboard"})
        print(f"  user {me['id']}; session {session['id']} ({session['title']!r})")

        current = "upload a reference by signed URL"
        step(3, "uploading a reference image by signed URL (registered by the bucket event) ...")
        signed_ref = upload_by_signed_url(api, session["id"], reference_photo(1))
        print(
            f"  registered {signed_ref['file_name']} {signed_ref['width']}x{signed_ref['height']} {signed_ref['mime_type']}"
        )

        current = "upload a reference through POST /v1/uploads"
        step(4, "uploading a second reference through POST /v1/uploads ...")
        multipart_ref = api.call(
            "POST",
            "/v1/uploads",
            201,
            files={"file": ("lighthouse noon.jpg", reference_photo(2), "image/jpeg")},
            data={"session_id": session["id"]},
        )
        print(
            f"  registered {multipart_ref['file_name']} {multipart_ref['width']}x{multipart_ref['height']}"
        )

        current = "request a generation"
        step(5, "requesting a 4-shot generation with a reference attached ...")
        request_body = {
            **DEMO_JOB,
            "session_id": session["id"],
            "reference_image_ids": [signed_ref["id"]],
        }
        job = api.call(
            "POST",
            "/v1/generations",
            202,
            json=request_body,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        print(f"  job {job['id']} accepted ({job['status']})")

        current = "follow the job"
        step(6, "following the job ...")
        deadline = time.monotonic() + args.timeout
        etag = None
        while True:
            wait = max(1, min(30, int(deadline - time.monotonic())))
            changed, etag = api.changed(f"/v1/generations/{job['id']}", etag, wait)
            job = changed or job
            progress = job["progress"]
            print(
                progress_bar(progress["done"], progress["total"], job["status"]), end="", flush=True
            )
            if job["status"] in ("completed", "failed", "cancelled"):
                print()
                break
            if time.monotonic() > deadline:
                print()
                raise StepFailed(f"the job is still {job['status']} after {args.timeout:.0f} s")
        if job["status"] != "completed":
            raise StepFailed(f"the job ended {job['status']}: {job.get('error_message')}")

        current = "show the session and the job"
        step(7, "the session and the job:")
        session = api.call("GET", f"/v1/sessions/{session['id']}", 200)
        print(
            f"  session  {session['title']!r}: {session['generated_count']} images, thumbnail {str(session.get('thumbnail_url'))[:90]}"
        )
        print(f"  prompt   {job['prompt']}")
        print(f"  enhanced {job['generated_prompt']}")
        print(f"  method   {job['generation_method']}  model {job['model_used']}")
        print(
            f"  timings  created {job['created_at']}  started {job['started_at']}  completed {job['completed_at']}"
        )

        current = "write the contact sheet"
        step(8, f"downloading the images and writing {args.out}/index.html ...")
        sheet = contact_sheet.write(
            args.out, session, job, [signed_ref, multipart_ref], job["images"]
        )
        print(f"  open {sheet} in a browser")
    except (StepFailed, requests.RequestException, KeyError) as exc:
        print(f"\ndemo failed at step '{current}': {exc}", file=sys.stderr)
        print("  logs: make logs   (or .local/logs/)", file=sys.stderr)
        return 1
    finally:
        if not args.keep_running and not already_running:
            subprocess.run(
                [sys.executable, "-m", "tools.stack", "down"], cwd=ROOT, capture_output=True
            )
    if args.keep_running or already_running:
        print("\nThe local stack is still running (make down stops it).")
        print(f"Console: {env['CONSOLE_URL']} (sign in as {user} to see this session)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
