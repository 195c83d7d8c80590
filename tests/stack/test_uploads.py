"""Uploads end to end on the local stack: the api with real tokens, the GCS emulator, the
finalize relay and register_upload under functions-framework."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests.stack.conftest import Stack
from tools.fixtures import images as make
from tools.fixtures.processes import run_stack, wait_for
from tools.pgcluster import connect
from tools.stack import events

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("running")]
VOLATILE = ("id", "gcp_bucket_path", "uploaded_at", "url", "urls_expire_at")


class Caller:
    """One user of the api, with a token from the local issuer."""

    def __init__(self, stack: Stack, name: str) -> None:
        self.api = stack.env["API_URL"]
        token = run_stack("token", name, timeout=30).stdout.strip()
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        me = self.http.get(f"{self.api}/v1/me", timeout=10)
        assert me.status_code == 200, me.text
        self.id: str = me.json()["id"]

    def upload(self, data: bytes, name: str = "photo.jpg", **fields: str) -> requests.Response:
        files = {"file": (name, data, "application/octet-stream")}
        return self.http.post(f"{self.api}/v1/uploads", files=files, data=fields, timeout=30)

    def ticket(self, **body: Any) -> requests.Response:
        return self.http.post(f"{self.api}/v1/uploads/signed-url", json=body, timeout=10)

    def references(self) -> list[dict[str, Any]]:
        answer = self.http.get(f"{self.api}/v1/reference-images?limit=100", timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]

    def reference(self, gcp_bucket_path: str, timeout: float = 30) -> dict[str, Any]:
        """The reference with this path once registration has made it (fails after timeout)."""
        return wait_for(lambda: _find(self.references(), gcp_bucket_path), timeout, gcp_bucket_path)


def ticketed(caller: Caller, bucket: storage.Bucket, size: int) -> storage.Blob:
    """A blob under a name a signed URL was issued for (its ticket allows `size` bytes), to
    write to directly, as a client that ignores the URL's conditions would."""
    body = {"file_name": "x.png", "mime_type": "image/png", "file_size": max(1, size)}
    answer = caller.ticket(**body)
    assert answer.status_code == 200, answer.text
    return bucket.blob(answer.json()["gcp_bucket_path"].split("/", 1)[1])


def _find(items: list[dict[str, Any]], path: str) -> dict[str, Any] | None:
    return next((i for i in items if i["gcp_bucket_path"] == path), None)


@pytest.fixture(scope="module")
def bucket(stack: Stack) -> storage.Bucket:
    client = storage.Client(project=stack.config.project, credentials=AnonymousCredentials())
    return client.bucket(stack.env["BUCKET_NAME"])


@pytest.fixture
def alice(stack: Stack) -> Caller:
    return Caller(stack, f"alice-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def sql(stack: Stack) -> Iterator[Callable[..., list[list[Any]]]]:
    conn = connect(stack.env["DATABASE_URL"])
    yield conn.run
    conn.close()


def logged(stack: Stack, offset: int, object_name: str, action: str) -> dict[str, Any]:
    """register_upload's log line about `object_name` with `action`, written after `offset`
    (waited for, up to 30 s)."""

    def find() -> dict[str, Any] | None:
        with stack.config.log("register-upload").open("rb") as handle:
            handle.seek(offset)
            for raw in handle.read().decode(errors="replace").splitlines():
                if raw.startswith("{") and object_name in raw:
                    line = json.loads(raw)
                    if line.get("object") == object_name and line.get("action") == action:
                        return line
        return None

    return wait_for(find, 30, f"{action} of {object_name}")


def finalize(stack: Stack, blob: storage.Blob, ce_id: str) -> int:
    """POST the object's finalize CloudEvent straight to register_upload, as Eventarc does."""
    function = next(f for f in stack.spec.functions if f.name == "register-upload")
    blob.reload()
    headers, body = events.finalized(blob._properties, ce_id)
    url = stack.config.function_url(function)
    return requests.post(url, data=body, headers=headers, timeout=30).status_code


def test_multipart_upload_with_a_real_token(stack: Stack, alice: Caller) -> None:
    offset = stack.log_size("register-upload")
    data = make.jpeg_rotated()
    answer = alice.upload(data, "Beach Day.jpg")
    assert answer.status_code == 201, answer.text
    image = answer.json()
    assert (image["mime_type"], image["width"], image["height"]) == ("image/jpeg", 48, 64)
    assert (image["file_name"], image["user_id"]) == ("Beach_Day.jpg", alice.id)
    assert requests.get(image["url"], timeout=10).content == data  # the signed URL serves it
    assert _find(alice.references(), image["gcp_bucket_path"]) is not None
    # The relay's finalize event for the route's own write finds the row already there.
    name = image["gcp_bucket_path"].split("/", 1)[1]
    logged(stack, offset, name, "register_upload.duplicate")


def test_signed_url_put_registers_automatically_like_the_multipart_path(
    stack: Stack, alice: Caller
) -> None:
    data = make.webp_rotated()
    direct = alice.upload(data, "same.webp").json()
    ticket = alice.ticket(file_name="same.webp", mime_type="image/webp", file_size=len(data))
    assert ticket.status_code == 200, ticket.text
    put = requests.put(
        ticket.json()["upload_url"], data=data, headers=ticket.json()["headers"], timeout=10
    )
    assert put.status_code == 200, put.text
    registered = alice.reference(ticket.json()["gcp_bucket_path"])
    assert {k: v for k, v in registered.items() if k not in VOLATILE} == {
        k: v for k, v in direct.items() if k not in VOLATILE
    }


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (make.text_renamed_jpg(), "unsupported_format"),
        (make.truncated(make.jpeg()), "truncated"),
        (make.png_bomb(), "too_many_pixels"),
        (make.jpeg_huge_sof(), "too_many_pixels"),
        (make.webp_animated(), "animated"),
    ],
)
def test_hostile_files_put_through_a_signed_url_are_quarantined(
    stack: Stack, alice: Caller, bucket: storage.Bucket, data: bytes, reason: str
) -> None:
    offset = stack.log_size("register-upload")
    ticket = alice.ticket(file_name="evil.jpg", mime_type="image/jpeg", file_size=max(1, len(data)))
    assert ticket.status_code == 200, ticket.text
    put = requests.put(
        ticket.json()["upload_url"], data=data, headers=ticket.json()["headers"], timeout=10
    )
    assert put.status_code == 200, put.text
    name = ticket.json()["gcp_bucket_path"].split("/", 1)[1]
    line = logged(stack, offset, name, "register_upload.quarantined")
    assert line["reason"] == reason and line["severity"] == "WARNING"
    assert not bucket.blob(name).exists() and bucket.blob(f"quarantine/{name}").exists()
    assert _find(alice.references(), ticket.json()["gcp_bucket_path"]) is None


def test_an_empty_object_is_quarantined(
    stack: Stack, alice: Caller, bucket: storage.Bucket
) -> None:
    # A signed URL cannot make one (its content-length range starts at 1); anything else can.
    offset = stack.log_size("register-upload")
    blob = ticketed(alice, bucket, 10)
    blob.upload_from_string(b"", content_type="image/jpeg")
    line = logged(stack, offset, blob.name, "register_upload.quarantined")
    assert line["reason"] == "empty"


def test_duplicate_concurrent_finalize_events_leave_one_row(
    stack: Stack, alice: Caller, bucket: storage.Bucket, sql: Callable[..., Any]
) -> None:
    data = make.png()
    blob = ticketed(alice, bucket, len(data))
    blob.upload_from_string(data, content_type="image/png")
    ce_id = events.event_id()  # a redelivery keeps the event id
    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = list(pool.map(lambda _: finalize(stack, blob, ce_id), range(2)))
    assert statuses == [200, 200]
    assert finalize(stack, blob, ce_id) == 200
    path = f"{bucket.name}/{blob.name}"
    wait_for(lambda: _find(alice.references(), path), 30, path)
    [[count]] = sql("SELECT count(*) FROM reference_images WHERE gcp_bucket_path = :p", p=path)
    assert count == 1


def test_an_object_no_signed_url_was_issued_for_is_quarantined(
    stack: Stack, alice: Caller, bucket: storage.Bucket
) -> None:
    offset = stack.log_size("register-upload")
    blob = bucket.blob(f"uploads/{alice.id}/20261130T000000000000Z_{uuid.uuid4().hex}.jpg")
    blob.upload_from_string(make.jpeg(), content_type="image/jpeg")
    line = logged(stack, offset, blob.name, "register_upload.quarantined")
    assert line["reason"] == "no_ticket"
    assert bucket.blob(f"quarantine/{blob.name}").exists()


def test_unknown_user_and_objects_outside_uploads(stack: Stack, bucket: storage.Bucket) -> None:
    offset = stack.log_size("register-upload")
    stranger = bucket.blob(f"uploads/{uuid.uuid4()}/20261130T000000000000Z_x.jpg")
    stranger.upload_from_string(make.jpeg(), content_type="image/jpeg")
    elsewhere = bucket.blob(f"generated/{uuid.uuid4()}/1_20261130T000000000000Z.jpg")
    elsewhere.upload_from_string(make.text_renamed_jpg(), content_type="image/jpeg")
    line = logged(stack, offset, stranger.name, "register_upload.quarantined")
    assert line["reason"] == "unknown_user"
    assert bucket.blob(f"quarantine/{stranger.name}").exists()
    logged(stack, offset, elsewhere.name, "register_upload.ignored")
    assert elsewhere.exists()


def test_another_users_session(
    stack: Stack, alice: Caller, bucket: storage.Bucket, sql: Callable[..., Any]
) -> None:
    bob = Caller(stack, f"bob-{uuid.uuid4().hex[:8]}")
    [[theirs]] = sql("INSERT INTO sessions (user_id) VALUES (:u) RETURNING id", u=bob.id)
    theirs = str(theirs)
    # The api refuses it on both paths: 404, as for any other user's resource.
    assert alice.upload(make.jpeg(), session_id=theirs).status_code == 404
    ticket = alice.ticket(
        file_name="a.jpg", mime_type="image/jpeg", file_size=10, session_id=theirs
    )
    assert ticket.status_code == 404
    # An object that carries it as metadata anyway is registered without it.
    offset = stack.log_size("register-upload")
    data = make.jpeg()
    blob = ticketed(alice, bucket, len(data))
    blob.metadata = {"session-id": theirs}
    blob.upload_from_string(data, content_type="image/jpeg")
    image = alice.reference(f"{bucket.name}/{blob.name}")
    assert image["session_id"] is None
    logged(stack, offset, blob.name, "register_upload.foreign_session")


def test_get_and_delete_are_for_the_owner_only(stack: Stack, alice: Caller) -> None:
    bob = Caller(stack, f"bob-{uuid.uuid4().hex[:8]}")
    image = alice.upload(make.png()).json()
    url = f"{alice.api}/v1/reference-images/{image['id']}"
    assert bob.http.get(url, timeout=10).status_code == 404
    assert bob.http.delete(url, timeout=10).status_code == 404
    assert alice.http.get(url, timeout=10).json()["id"] == image["id"]
    assert alice.http.delete(url, timeout=10).status_code == 204
    assert alice.http.get(url, timeout=10).status_code == 404
    assert _find(alice.references(), image["gcp_bucket_path"]) is None
