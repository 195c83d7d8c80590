"""Each local function serves as many requests at once as the manifest lets it serve on GCP: the
api's one process is one instance with the manifest's concurrency as threads; an event function's
one process stands in for all its instances, and the relay pushes it that many at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import manifest
from tools.stack import pubsub, relay
from tools.stack.config import StackConfig
from tools.stack.services import function_env

SPEC = manifest.load()


@pytest.fixture
def config(tmp_path: Path) -> StackConfig:
    return StackConfig.from_env(SPEC, {"STACK_DIR": str(tmp_path)})


def threads(config: StackConfig, name: str) -> int:
    env = function_env(config, SPEC, name, "postgresql://localhost/x")
    assert env["WORKERS"] == "1"
    return int(env["THREADS"])


def test_the_api_runs_the_manifests_concurrency_as_threads(config: StackConfig) -> None:
    api = SPEC.function("api")
    assert threads(config, "api") == api.concurrency == 250


def test_an_event_function_takes_every_push_its_instances_would_and_answers_probes(
    config: StackConfig,
) -> None:
    pushed = {t.function: t.concurrency for t in pubsub.push_targets(config, SPEC)}
    finalized = {
        t.name: t.concurrency for t in relay.targets(config, SPEC.by_trigger("gcs_finalize"))
    }
    events = [f for f in SPEC.functions if f.trigger != "http"]
    assert {f.name for f in events} == set(pushed) | set(finalized)
    for f in events:
        at_once = pushed.get(f.name) or finalized[f.name]
        assert at_once == f.max_instances * f.concurrency, f.name
        assert threads(config, f.name) == at_once + 1, f.name
    # the manifest's 1,000 shots in flight (4 instances x 250) render at once
    assert pushed["render-image"] == SPEC.capacity.shots_in_flight == 1000


def test_each_function_gets_its_pool_and_how_long_to_wait_for_it(config: StackConfig) -> None:
    for f in SPEC.functions:
        env = function_env(config, SPEC, f.name, "postgresql://localhost/x")
        assert env["DB_POOL_SIZE"] == str(f.pool_size), f.name
        assert float(env["DB_POOL_TIMEOUT_SECONDS"]) == f.pool_timeout_seconds, f.name
