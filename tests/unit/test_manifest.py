"""The manifest loader: the real file loads, its budget fits, and mistakes are all reported."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from infra import manifest


def test_the_manifest_loads_with_its_topics_and_triggers() -> None:
    spec = manifest.load()
    assert [f.name for f in spec.by_trigger("http")] == ["api"]
    assert spec.function("register-upload").object_prefix == "uploads/"
    for f in spec.by_trigger("pubsub"):
        assert f.topic in spec.all_topics()
        if f.dead_letter_topic:
            assert f.dead_letter_topic in spec.dead_letter_topics
    assert "generation-events" in spec.all_topics()


def test_every_event_function_that_retries_ends_poison_in_a_dead_letter_topic() -> None:
    """A trigger with retries and no dead-letter topic redelivers a poison event until the
    message expires (a week on GCP), billed per attempt."""
    spec = manifest.load()
    for f in spec.functions:
        if f.trigger != "http" and f.retry:
            assert f.dead_letter_topic in spec.dead_letter_topics, f.name
            assert f.max_delivery_attempts is not None and f.max_delivery_attempts >= 5


def test_connection_budget_leaves_room_for_operators() -> None:
    spec = manifest.load()
    assert spec.connections_used() <= spec.max_connections - spec.reserved_connections


def test_the_render_fleet_holds_the_target_shots_on_a_few_connections() -> None:
    spec = manifest.load()
    render, capacity = spec.function("render-image"), spec.capacity
    assert render.requests_at_once >= capacity.shots_in_flight == 1000
    # Each instance's pool carries the transactions of its shots in flight at their peak...
    assert render.pool_size >= math.ceil(capacity.transactions(render.concurrency))
    # ...so the fleet's connections follow its transactions, not its shots: one connection per
    # shot in flight (today's concurrency 1) would need the target's thousand.
    fleet = render.max_instances * render.connections
    assert math.ceil(capacity.transactions(capacity.shots_in_flight)) <= fleet <= 10
    assert capacity.shots_in_flight > spec.connections_available()
    assert spec.connections_used() <= spec.connections_available()


def test_a_wave_of_finishing_shots_waits_for_the_pool_instead_of_failing() -> None:
    """A whole instance's shots may reach the pool at once (started together, they finish
    together); the last one waits for all the others' transactions on `pool_size` connections."""
    spec = manifest.load()
    render, capacity = spec.function("render-image"), spec.capacity
    wave = render.concurrency * capacity.transaction_seconds_per_shot / render.pool_size
    assert wave * capacity.safety_factor <= render.pool_timeout_seconds
    assert render.pool_timeout_seconds <= render.timeout_seconds / 2
    assert spec.function("api").pool_timeout_seconds == 10  # a request fails fast instead


def test_the_model_limits_admit_the_target_shots() -> None:
    spec = manifest.load()
    limits, capacity = spec.model_limits, spec.capacity
    assert limits.concurrent_images >= capacity.shots_in_flight
    assert limits.images_per_minute >= capacity.shots_in_flight * 60 / capacity.shot_seconds


def test_capacity_and_limits_must_be_positive_numbers(tmp_path: Path) -> None:
    source = manifest.MANIFEST.read_text()
    source = source.replace("safety_factor = 3 ", "safety_factor = 0 ")
    source = source.replace("images_per_minute = 2000", 'images_per_minute = "2000"')
    (tmp_path / "functions.toml").write_text(source)
    with pytest.raises(ValueError) as caught:
        manifest.load(tmp_path / "functions.toml")
    assert "[capacity] safety_factor must be a positive number, got 0" in str(caught.value)
    assert "[openai] images_per_minute must be a positive number" in str(caught.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "functions.toml"
    bad.write_text(
        """
[project]
apis = ["pubsub.googleapis.com", "pubsub"]

[dead_letter_hold]
message_retention_seconds = 604800
ack_deadline_seconds = 5

[[functions]]
name = "a"
entry_point = "a"
source = "functions/a/main.py"
trigger = "pubsub"
local_port = "8080"
timeout_seconds = 60
memory = "256Mi"
max_instances = 1
pool_size = 1
retry = true
dead_letter_topic = "a-dead"
"""
    )
    with pytest.raises(ValueError) as caught:
        manifest.load(bad)
    message = str(caught.value)
    assert "local_port has the wrong type" in message
    assert "topic None is not in [topics]" in message
    assert "dead_letter_topic and max_delivery_attempts go together" in message
    assert "[project] apis: not service names ['pubsub']" in message
    assert "[dead_letter_hold] ack_deadline_seconds must be an integer in 10..600" in message
    assert "message_retention_seconds" not in message


# One vCPU keeps about one connection busy (bench: a 1-CPU api process serves as many requests/s
# with a pool of 1 as of 8); the second per vCPU covers Cloud SQL round trips and a slow statement.
CONNECTIONS_PER_VCPU = 2


def test_each_pool_matches_what_one_instance_can_use() -> None:
    for f in manifest.load().functions:
        if f.concurrency > 1:
            assert f.pool_size == CONNECTIONS_PER_VCPU * manifest.vcpus(f.cpu), f.name
        else:  # one request at a time: its connection, and one for a helper thread at most
            assert f.pool_size <= 2, f.name


def test_the_api_serves_200_waiters_beside_ordinary_requests() -> None:
    from shared.web import waits

    api = manifest.load().function("api")
    assert api.listens and api.connections == api.pool_size + 1
    assert api.concurrency >= 200 + 50 and manifest.vcpus(api.cpu) >= 1
    assert api.timeout_seconds >= waits.MAX_WAIT_SECONDS + 30  # a full wait, then the answer


def test_the_webhook_sender_waits_on_many_receivers_per_instance() -> None:
    from shared.webhooks import delivery

    # An attempt is mostly a wait on its receiver (up to its timeout) that holds no database
    # connection: one instance serves many at once, on a whole vCPU, with a thread each.
    sender = manifest.load().function("deliver-webhooks")
    assert sender.concurrency >= 20 and manifest.vcpus(sender.cpu) >= 1
    assert sender.requests_at_once >= 100
    assert sender.timeout_seconds >= delivery.LEASE_SECONDS


def test_make_up_turns_on_loopback_receivers_for_every_function(tmp_path: Path) -> None:
    from tools.stack import services
    from tools.stack.config import StackConfig

    spec = manifest.load()
    config = StackConfig.from_env(spec, {"STACK_DIR": str(tmp_path)})
    for f in spec.functions:
        env = services.function_env(config, spec, f.name, "postgresql://x")
        assert env["WEBHOOK_ALLOW_LOOPBACK_HTTP"] == "true", f.name


def test_concurrency_needs_a_whole_vcpu(tmp_path: Path) -> None:
    source = manifest.MANIFEST.read_text().replace('cpu = "1"', 'cpu = "0.5"')
    (tmp_path / "functions.toml").write_text(source)
    with pytest.raises(ValueError, match="api: concurrency above 1 needs cpu of at least 1"):
        manifest.load(tmp_path / "functions.toml")
