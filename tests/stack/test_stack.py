"""The local stack delivers as GCP does: finalize CloudEvents, Pub/Sub push with retries and
dead letters, ID tokens that verify; and `up`/`down` manage it. Delivery is proved by the
receiving function's own log line."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import google.auth.transport.requests
import pytest
import requests
from google.auth import crypt, jwt
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1, storage
from google.oauth2 import id_token

from tests.stack.conftest import Stack
from tools.fixtures.processes import run_stack
from tools.stack import issuer, keys, procs

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def bucket(stack: Stack) -> storage.Bucket:
    client = storage.Client(project=stack.config.project, credentials=AnonymousCredentials())
    return client.bucket(stack.config.bucket)


@pytest.fixture(scope="module")
def publisher(stack: Stack) -> Iterator[pubsub_v1.PublisherClient]:
    client = pubsub_v1.PublisherClient()
    yield client
    client.transport.close()


def publish(
    stack: Stack, publisher: pubsub_v1.PublisherClient, topic: str, data: bytes, **attrs: str
) -> str:
    path = publisher.topic_path(stack.config.project, topic)
    return str(publisher.publish(path, data, **attrs).result(timeout=10))


def pull_until(
    stack: Stack, subscription: str, match: dict[str, str], timeout: float
) -> pubsub_v1.types.PubsubMessage:
    """Pull (and ack) from a tail subscription until a message with `match` attributes comes."""
    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(stack.config.project, subscription)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            response = subscriber.pull(
                request={"subscription": path, "max_messages": 50}, timeout=10
            )
            if response.received_messages:
                ack_ids = [m.ack_id for m in response.received_messages]
                subscriber.acknowledge(request={"subscription": path, "ack_ids": ack_ids})
            for received in response.received_messages:
                if all(received.message.attributes.get(k) == v for k, v in match.items()):
                    return received.message
            time.sleep(0.5)
    finally:
        subscriber.close()
    raise AssertionError(f"no message with {match} on {subscription} within {timeout}s")


def test_finalize_reaches_register_upload_in_eventarc_shape(
    stack: Stack, bucket: storage.Bucket
) -> None:
    function_log = stack.log_size("register-upload")
    relay_log = stack.log_size("relay")
    upload = bucket.blob(f"uploads/{uuid.uuid4()}/{int(time.time())}_ref.png")
    upload.metadata = {"origin": "stack-test"}
    upload.upload_from_string(b"\x89PNG not really", content_type="image/png")
    other = bucket.blob(f"generated/{uuid.uuid4()}/0_x.jpg")
    other.upload_from_string(b"jpeg", content_type="image/jpeg")

    # Both arrive: the function, not the trigger, ignores what is outside uploads/.
    for blob in (upload, other):
        line = stack.wait_for_log("register-upload", blob.name, function_log)
        assert line["type"] == "google.cloud.storage.object.v1.finalized"
        assert line["subject"] == f"objects/{blob.name}"

    sent = stack.wait_for_log("relay", f'"object": "{upload.name}"', relay_log)
    assert sent["action"] == "relay.delivered" and sent["status"] == 200
    headers, data = sent["headers"], sent["data"]
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-source"] == f"//storage.googleapis.com/projects/_/buckets/{bucket.name}"
    assert headers["ce-subject"] == f"objects/{upload.name}"
    assert headers["Content-Type"].startswith("application/json")
    # No reload: register_upload quarantines this object (no such user), so it is gone by now;
    # the upload's response already carried generation, metageneration and hashes.
    assert data["kind"] == "storage#object"
    assert data["bucket"] == bucket.name and data["name"] == upload.name
    assert data["generation"] == str(upload.generation)
    assert data["metageneration"] == str(upload.metageneration)
    assert data["size"] == str(len(b"\x89PNG not really"))
    assert data["contentType"] == "image/png"
    assert data["md5Hash"] == upload.md5_hash and data["crc32c"] == upload.crc32c
    assert data["metadata"] == {"origin": "stack-test"}
    assert data["timeCreated"] and data["updated"]
    received = stack.wait_for_log("register-upload", upload.name, function_log)
    assert received["event_id"] == headers["ce-id"]


def test_each_topic_delivers_to_its_function(
    stack: Stack, publisher: pubsub_v1.PublisherClient
) -> None:
    functions = stack.spec.by_trigger("pubsub")
    offsets = {f.name: stack.log_size(f.name) for f in functions}
    ids = {
        f.name: publish(
            stack, publisher, f.topic or "", json.dumps({"test": str(uuid.uuid4())}).encode()
        )
        for f in functions
    }
    for f in functions:
        line = stack.wait_for_log(f.name, f'"event_id": "{ids[f.name]}"', offsets[f.name])
        assert line["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    token = str(uuid.uuid4())
    publish(stack, publisher, "generation-events", b'{"job": "done"}', token=token)
    assert (
        pull_until(stack, "generation-events-tail", {"token": token}, timeout=20).data
        == b'{"job": "done"}'
    )


def test_failed_deliveries_are_retried_until_the_function_heals(
    stack: Stack, bucket: storage.Bucket, publisher: pubsub_v1.PublisherClient
) -> None:
    # GIVEN two event functions whose processes died
    before = stack.status()
    victims = ["register-upload", "plan-generation"]
    for name in victims:
        procs.stop(stack.config.pid_file(name))
    relay_log, offsets = stack.log_size("relay"), {n: stack.log_size(n) for n in victims}
    # WHEN an object and a message arrive meanwhile, fail at least once, and `up` heals
    blob = bucket.blob(f"uploads/{uuid.uuid4()}/{int(time.time())}_heal.png")
    blob.upload_from_string(b"heal", content_type="image/png")
    message_id = publish(stack, publisher, "generation-requests", b'{"heal": true}')
    assert stack.wait_for_log("relay", blob.name, relay_log)["action"] == "relay.retry"
    result = run_stack("up")
    assert result.returncode == 0, result.stdout + result.stderr
    # THEN both are delivered, the two functions are new processes and the rest untouched
    stack.wait_for_log("register-upload", blob.name, offsets["register-upload"], timeout=40)
    stack.wait_for_log(
        "plan-generation", f'"event_id": "{message_id}"', offsets["plan-generation"], timeout=40
    )
    after = stack.status()
    assert all(after[n]["up"] for n in after)
    for name, row in before.items():
        if name in victims:
            assert after[name]["pid"] != row["pid"]
        else:
            assert after[name]["pid"] == row["pid"], name


def test_restarted_relay_resends_nothing_and_schedules_are_published(
    stack: Stack, bucket: storage.Bucket
) -> None:
    # GIVEN an object already delivered
    blob = bucket.blob(f"uploads/{uuid.uuid4()}/{int(time.time())}_once.png")
    offset = stack.log_size("register-upload")
    blob.upload_from_string(b"once", content_type="image/png")
    stack.wait_for_log("register-upload", blob.name, offset)
    # WHEN the relay restarts with a one-second schedule
    assert run_stack("down", "--only", "relay").returncode == 0
    relay_log, maintenance_log = stack.log_size("relay"), stack.log_size("maintenance")
    try:
        assert run_stack("up", env={"STACK_SCHEDULE_SECONDS": "1"}).returncode == 0
        published = stack.wait_for_log("relay", "scheduler.published", relay_log, timeout=15)
        # THEN the maintenance function gets the schedule's message
        line = stack.wait_for_log(
            "maintenance", f'"event_id": "{published["message_id"]}"', maintenance_log
        )
        assert line["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    finally:
        assert run_stack("down", "--only", "relay").returncode == 0
        assert run_stack("up").returncode == 0
    # AND the object delivered before the restart was not sent again
    assert blob.name not in stack.config.log("relay").read_bytes()[relay_log:].decode()


def test_a_message_published_while_the_relay_is_down_is_pushed_when_it_is_back(
    stack: Stack, publisher: pubsub_v1.PublisherClient
) -> None:
    maintenance = stack.spec.function("maintenance")
    assert run_stack("down", "--only", "relay").returncode == 0
    offset = stack.log_size(maintenance.name)
    try:
        message_id = publish(stack, publisher, maintenance.topic or "", b'{"task": "sweep_jobs"}')
    finally:
        assert run_stack("up").returncode == 0
    # not left to a pull of the stopped relay (it would come back only after its ack deadline)
    stack.wait_for_log(maintenance.name, f'"event_id": "{message_id}"', offset, timeout=10)


def test_up_twice_is_idempotent(stack: Stack) -> None:
    before = stack.status()
    result = run_stack("up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("already running") == len(before)
    assert stack.status() == before


def test_undeliverable_message_lands_in_the_dead_letter_topic(
    stack: Stack, publisher: pubsub_v1.PublisherClient
) -> None:
    # render-image answers every message; in its place on its port, an endpoint that fails
    # every attempt (as a function raising on each delivery would).
    render = stack.spec.function("render-image")
    procs.stop(stack.config.pid_file(render.name))
    failing = _failing_endpoint(stack.config.function_ports[render.name])
    try:
        token = str(uuid.uuid4())
        publish(stack, publisher, render.topic or "", b'{"shot": 0}', poison=token)
        tail = f"{render.dead_letter_topic}-tail"
        message = pull_until(stack, tail, {"poison": token}, timeout=60)
    finally:
        failing.shutdown()
        failing.server_close()
        result = run_stack("up")
    assert result.returncode == 0, result.stdout + result.stderr
    attributes = message.attributes
    assert attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == str(
        render.max_delivery_attempts
    )
    assert attributes["CloudPubSubDeadLetterSourceSubscription"].endswith(f"{render.name}-push")
    assert attributes["CloudPubSubDeadLetterSourceTopicPublishTime"]
    assert message.data == b'{"shot": 0}'


def test_a_finalize_event_never_taken_lands_in_the_dead_letter_topic(
    stack: Stack, bucket: storage.Bucket
) -> None:
    register = stack.spec.function("register-upload")
    procs.stop(stack.config.pid_file(register.name))
    try:
        blob = bucket.blob(f"uploads/{uuid.uuid4()}/{int(time.time())}_never.png")
        blob.upload_from_string(b"never", content_type="image/png")
        tail = f"{register.dead_letter_topic}-tail"
        message = pull_until(stack, tail, {"ce-subject": f"objects/{blob.name}"}, timeout=60)
    finally:
        result = run_stack("up")
    assert result.returncode == 0, result.stdout + result.stderr
    attributes = message.attributes
    assert attributes["ce-type"] == "google.cloud.storage.object.v1.finalized"
    assert attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == str(
        register.max_delivery_attempts
    )
    assert json.loads(message.data)["name"] == blob.name


def _failing_endpoint(port: int) -> ThreadingHTTPServer:
    """An HTTP server on the port that answers 500 to every POST."""

    class Failing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_issuer_tokens_verify_like_firebase_and_forgeries_fail(stack: Stack) -> None:
    request = google.auth.transport.requests.Request()
    certs_url, project = stack.env["AUTH_CERTS_URL"], stack.config.project
    token = run_stack("token", "alice", timeout=30).stdout.strip()
    claims = id_token.verify_token(token, request, audience=project, certs_url=certs_url)
    assert claims["iss"] == f"https://securetoken.google.com/{project}"
    assert claims["sub"] == claims["user_id"] == issuer.user_id("alice")
    assert claims["email"] == "alice@example.com" and claims["name"] == "alice"
    assert claims["exp"] > claims["iat"] >= claims["auth_time"] - 1
    served = requests.get(
        f"{stack.env['TOKEN_ISSUER_URL']}/token", params={"user": "alice"}, timeout=5
    )
    again = id_token.verify_token(
        served.json()["token"], request, audience=project, certs_url=certs_url
    )
    assert again["sub"] == claims["sub"]

    real_kid = next(iter(requests.get(certs_url, timeout=5).json()))
    forger = crypt.RSASigner.from_string(keys.new_private_key_pem(), key_id=real_kid)
    forged = jwt.encode(forger, issuer.claims("alice", project)).decode()
    with pytest.raises(ValueError):
        id_token.verify_token(forged, request, audience=project, certs_url=certs_url)
    with pytest.raises(ValueError):
        id_token.verify_token(token, request, audience="another-project", certs_url=certs_url)


def test_down_stops_every_process_and_port(stack: Stack) -> None:
    """Runs last: stops the stack, then restores it if the tests found it running."""
    status = stack.status()
    result = run_stack("down")
    assert result.returncode == 0, result.stdout + result.stderr
    for name, row in status.items():
        assert not procs.group_alive(row["pid"]), f"{name} (pid {row['pid']}) still runs"
        assert not procs.port_answers(row["port"]), f"{name} port {row['port']} answers"
    if not stack.started_here:
        assert run_stack("up").returncode == 0
