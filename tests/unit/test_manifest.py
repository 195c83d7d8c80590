"""The manifest loader: the real file loads, its budget fits, and mistakes are all reported."""

from __future__ import annotations

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


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "functions.toml"
    bad.write_text(
        """
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
