"""The relay sends what GCP sends (tests/data: Eventarc's finalize event, the Pub/Sub
emulator's push); the issuer's claims are Firebase's."""

from __future__ import annotations

import base64
import json

from google.cloud import pubsub_v1
from google.protobuf import timestamp_pb2

from tests import wire
from tools.stack import events, issuer, pusher


def test_finalized_events_are_sent_as_eventarc_sends_them() -> None:
    headers, body = wire.request("storage-object-finalized")
    # The object resource as the emulator's JSON API returns it: numbers, ACLs, nulls.
    resource = {**body, "generation": int(body["generation"]), "acl": [], "contentEncoding": None}
    sent_headers, sent_body = events.finalized(resource, headers["ce-id"])
    assert sent_headers == headers and json.loads(sent_body) == body
    spaced = events.finalized({**resource, "name": "uploads/u/1_a b.png"}, "1")[0]
    assert spaced["ce-subject"] == "objects/uploads/u/1_a%20b.png"  # the HTTP binding's encoding


def test_push_bodies_are_sent_as_the_pubsub_emulator_sends_them() -> None:
    _, body = wire.request("pubsub-push")
    message = body["message"]
    published = timestamp_pb2.Timestamp()
    published.FromJsonString(message["publishTime"])
    received = pubsub_v1.types.ReceivedMessage(
        ack_id="a",
        message=pubsub_v1.types.PubsubMessage(
            data=base64.b64decode(message["data"]),
            message_id=message["messageId"],
            publish_time=published,
        ),
    )
    assert pusher.push_body(received, body["subscription"]) == body


def test_event_ids_are_decimal_and_fresh() -> None:
    ids = {events.event_id() for _ in range(100)}
    assert len(ids) == 100 and all(i.isdigit() and len(i) == 16 for i in ids)


def test_firebase_claims_have_a_stable_subject_per_user() -> None:
    claims = issuer.claims("alice", "proj", now=1000)
    assert claims["iss"] == "https://securetoken.google.com/proj" and claims["aud"] == "proj"
    assert claims["sub"] == claims["user_id"] == issuer.user_id("alice") != issuer.user_id("bob")
    assert len(str(claims["sub"])) == 28 and claims["exp"] == 1000 + 3600
