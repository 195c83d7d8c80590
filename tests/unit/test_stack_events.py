"""The relay's finalize CloudEvent has Eventarc's shape; the issuer's claims Firebase's."""

from __future__ import annotations

import json

from tools.stack import events, issuer

RESOURCE = {
    "kind": "storage#object",
    "id": "b/uploads/u/1_a b.png/17",
    "name": "uploads/u/1_a b.png",
    "bucket": "b",
    "generation": 17,
    "metageneration": "1",
    "contentType": "image/png",
    "size": 42,
    "md5Hash": "bWQ1",
    "crc32c": "Y3Jj",
    "etag": None,
    "timeCreated": "2026-11-30T08:55:31.148048Z",
    "updated": "2026-11-30T08:55:31.148048Z",
    "metadata": {"k": "v"},
    "acl": [],
}


def test_finalized_event_is_binary_mode_with_the_object_resource() -> None:
    headers, body = events.finalized(RESOURCE, "123")
    assert headers["ce-type"] == "google.cloud.storage.object.v1.finalized"
    assert headers["ce-source"] == "//storage.googleapis.com/projects/_/buckets/b"
    assert headers["ce-subject"] == "objects/uploads/u/1_a%20b.png"
    assert headers["ce-id"] == "123" and headers["ce-time"] == RESOURCE["updated"]
    data = json.loads(body)
    assert data["generation"] == "17" and data["size"] == "42"
    assert "acl" not in data and "etag" not in data
    assert data["metadata"] == {"k": "v"} and data["name"] == RESOURCE["name"]


def test_event_ids_are_decimal_and_fresh() -> None:
    ids = {events.event_id() for _ in range(100)}
    assert len(ids) == 100 and all(i.isdigit() and len(i) == 16 for i in ids)


def test_firebase_claims_have_a_stable_subject_per_user() -> None:
    claims = issuer.claims("alice", "proj", now=1000)
    assert claims["iss"] == "https://securetoken.google.com/proj" and claims["aud"] == "proj"
    assert claims["sub"] == claims["user_id"] == issuer.user_id("alice") != issuer.user_id("bob")
    assert len(str(claims["sub"])) == 28 and claims["exp"] == 1000 + 3600
