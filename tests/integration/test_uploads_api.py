"""The upload and reference-image routes through the api's dispatcher, on PostgreSQL and GCS."""

from __future__ import annotations

import io
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from shared import config, db, storage
from shared.events import StorageObject
from shared.queries import object_deletions, reference_images
from shared.uploads import registration
from tests.apikit import call_as
from tests.integration import factories
from tools.fixtures import images as make
from tools.fixtures.cloud import Cloud, reset_clients

VOLATILE = ("id", "gcp_bucket_path", "uploaded_at", "created", "url", "urls_expire_at")


def multipart(user: dict[str, Any], data: bytes, name: str = "photo.jpg", **fields: Any) -> Any:
    form = {"file": (io.BytesIO(data), name), **fields}
    return call_as(user, "POST", "/v1/uploads", data=form)


def stored(name: str) -> StorageObject:
    """The finalize event's view of a stored object."""
    blob = storage.bucket().get_blob(name)
    assert blob is not None, name
    return StorageObject(
        config.settings().bucket,
        name,
        blob.generation,
        blob.size,
        blob.content_type,
        blob.metadata or {},
    )


def uploads_of(user: dict[str, Any]) -> list[str]:
    prefix = f"{storage.UPLOADS_PREFIX}{user['id']}/"
    return [b.name for b in storage.client().list_blobs(config.settings().bucket, prefix=prefix)]


def test_multipart_upload_stores_registers_and_links_the_session(
    bucket: str, owner: dict[str, Any]
) -> None:
    with db.transaction() as conn:
        session = factories.session(conn, owner)
    data = make.jpeg_rotated()
    status, body, headers = multipart(
        owner, data, "../../My Pic.jpg", session_id=str(session["id"])
    )
    assert status == 201, body
    assert headers["Location"] == f"/v1/reference-images/{body['id']}"
    assert (body["mime_type"], body["width"], body["height"]) == ("image/jpeg", 48, 64)
    assert (body["file_name"], body["file_size"]) == ("My_Pic.jpg", len(data))
    assert body["session_id"] == str(session["id"])
    assert "X-Goog-Signature=" in body["url"] and "created" not in body
    name = body["gcp_bucket_path"].split("/", 1)[1]
    assert name.startswith(f"uploads/{owner['id']}/") and name.endswith("_My_Pic.jpg")
    assert storage.read(name) == data
    event = stored(name)
    assert event.metadata == {registration.SESSION_METADATA_KEY: str(session["id"])}
    assert event.content_type == "image/jpeg"
    # The finalize event that follows the route's write finds the row already there.
    assert registration.register_object(event) == "duplicate"


def test_both_paths_give_the_same_row(bucket: str, owner: dict[str, Any]) -> None:
    data = make.png_palette_transparent()
    status, direct, _ = multipart(owner, data, "same file.png")
    assert status == 201, direct
    status, ticket, _ = call_as(
        owner,
        "POST",
        "/v1/uploads/signed-url",
        json={"file_name": "same file.png", "mime_type": "image/png", "file_size": len(data)},
    )
    assert status == 200, ticket
    put = requests.put(ticket["upload_url"], data=data, headers=ticket["headers"], timeout=10)
    assert put.status_code == 200, put.text
    name = ticket["gcp_bucket_path"].split("/", 1)[1]
    registration.handle_finalize(stored(name))
    status, listed, _ = call_as(owner, "GET", "/v1/reference-images")
    assert [i["gcp_bucket_path"] for i in listed["items"]] == [
        ticket["gcp_bucket_path"],
        direct["gcp_bucket_path"],
    ]
    by_signed_url = listed["items"][0]
    assert {k: v for k, v in by_signed_url.items() if k not in VOLATILE} == {
        k: v for k, v in direct.items() if k not in VOLATILE
    }


def test_someone_elses_session_is_a_404_and_nothing_is_stored(
    bucket: str, owner: dict[str, Any]
) -> None:
    with db.transaction() as conn:
        theirs = factories.session(conn, factories.user(conn))
    status, body, _ = multipart(owner, make.jpeg(), session_id=str(theirs["id"]))
    assert (status, body["error"]["code"]) == (404, "not_found")
    ticket = {"file_name": "a.jpg", "mime_type": "image/jpeg", "file_size": 10}
    status, body, _ = call_as(
        owner, "POST", "/v1/uploads/signed-url", json={**ticket, "session_id": str(theirs["id"])}
    )
    assert (status, body["error"]["code"]) == (404, "not_found")
    assert uploads_of(owner) == []


def test_signed_url_binds_type_size_and_create_only(bucket: str, owner: dict[str, Any]) -> None:
    status, body, _ = call_as(
        owner,
        "POST",
        "/v1/uploads/signed-url",
        json={"file_name": "../My Cat.JPG", "mime_type": "image/png", "file_size": 1234},
    )
    assert status == 200, body
    assert body["method"] == "PUT"
    assert body["headers"] == {
        "Content-Type": "image/png",
        "x-goog-content-length-range": "1,1234",
        "x-goog-if-generation-match": "0",
    }
    query = parse_qs(urlsplit(body["upload_url"]).query)
    assert query["X-Goog-SignedHeaders"] == [
        "content-type;host;x-goog-content-length-range;x-goog-if-generation-match"
    ]
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert int(query["X-Goog-Expires"][0]) == config.settings().signed_url_ttl_seconds
    name = body["gcp_bucket_path"].split("/", 1)[1]
    assert urlsplit(body["upload_url"]).path.endswith(name.replace(" ", "%20"))
    assert name.startswith(f"uploads/{owner['id']}/") and name.endswith("_My_Cat.JPG")
    assert registration.owner_and_file_name(name) == (str(owner["id"]), "My_Cat.JPG")


def test_signed_url_carries_the_session_as_signed_metadata(
    bucket: str, owner: dict[str, Any]
) -> None:
    with db.transaction() as conn:
        session = factories.session(conn, owner)
    ticket = {"file_name": "a.jpg", "mime_type": "image/jpeg", "file_size": 10}
    status, body, _ = call_as(
        owner, "POST", "/v1/uploads/signed-url", json={**ticket, "session_id": str(session["id"])}
    )
    assert status == 200, body
    assert body["headers"]["x-goog-meta-session-id"] == str(session["id"])
    assert "x-goog-meta-session-id" in body["upload_url"].split("X-Goog-SignedHeaders=")[1]


def test_list_pages_newest_first_and_only_the_callers(bucket: str, owner: dict[str, Any]) -> None:
    with db.transaction() as conn:
        stranger = factories.user(conn)
    mine = [multipart(owner, make.png(), f"{i}.png")[1]["id"] for i in range(3)]
    multipart(stranger, make.png(), "theirs.png")
    status, first, _ = call_as(owner, "GET", "/v1/reference-images?limit=2")
    assert status == 200
    assert [i["id"] for i in first["items"]] == mine[::-1][:2]
    status, second, _ = call_as(
        owner, "GET", f"/v1/reference-images?limit=2&cursor={first['next_cursor']}"
    )
    assert ([i["id"] for i in second["items"]], second["next_cursor"]) == ([mine[0]], None)
    assert call_as(owner, "GET", "/v1/reference-images?limit=0")[0] == 400
    assert call_as(owner, "GET", "/v1/reference-images?cursor=nonsense")[0] == 400


def test_get_is_for_the_owner_only(bucket: str, owner: dict[str, Any]) -> None:
    with db.transaction() as conn:
        stranger = factories.user(conn)
    image = multipart(owner, make.webp())[1]
    status, body, _ = call_as(owner, "GET", f"/v1/reference-images/{image['id']}")
    assert (status, body["id"], body["url"].startswith(storage._emulator() or "")) == (
        200,
        image["id"],
        True,
    )
    assert call_as(stranger, "GET", f"/v1/reference-images/{image['id']}")[0] == 404
    assert call_as(owner, "GET", f"/v1/reference-images/{uuid.uuid4()}")[0] == 404
    assert call_as(owner, "GET", "/v1/reference-images/not-an-id")[0] == 404


@pytest.fixture
def deletions(bucket: str, emulators: Cloud, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What this test publishes to object-deletions, read from the Pub/Sub emulator."""
    for name in ("PUBSUB_EMULATOR_HOST", "GCP_PROJECT"):
        monkeypatch.setenv(name, emulators.environ[name])
    reset_clients()
    emulators.pull("object-deletions")  # what earlier tests left
    seen = emulators.seen["object-deletions"]
    before = len(seen)

    def published() -> list[dict[str, Any]]:
        emulators.pull("object-deletions")
        return seen[before:]

    return published


def test_delete_removes_the_row_and_asks_for_the_objects(
    bucket: str, owner: dict[str, Any], deletions: Any
) -> None:
    with db.transaction() as conn:
        stranger = factories.user(conn)
    image = multipart(owner, make.jpeg())[1]
    name = image["gcp_bucket_path"].split("/", 1)[1]
    assert call_as(stranger, "DELETE", f"/v1/reference-images/{image['id']}")[0] == 404
    status, body, _ = call_as(owner, "DELETE", f"/v1/reference-images/{image['id']}")
    assert (status, body) == (204, None)
    with db.transaction() as conn:
        assert reference_images.get_owned(conn, image_id=image["id"], user_id=owner["id"]) is None
    copy = f"working/{name}.jpg"  # its working copy goes with it
    assert storage.bucket().blob(copy).exists()
    (message,) = deletions()
    with db.transaction() as conn:
        entry = object_deletions.get(conn, outbox_id=message["outbox_id"])
    assert entry is not None and entry["reason"] == "reference_image_deleted"
    assert (entry["object_names"], entry["object_generations"]) == ([name, copy], [None, None])
    assert call_as(owner, "DELETE", f"/v1/reference-images/{image['id']}")[0] == 404
