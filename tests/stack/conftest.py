"""The local stack for the tests in this folder: brought up once per test run (or a running
one reused, as `make up` left it), and only what the fixture started is brought down.

Without the Pub/Sub emulator every test here is skipped with the install hint as the reason.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra import manifest
from tools.fixtures.processes import run_stack
from tools.stack import emulator
from tools.stack.config import StackConfig
from tools.stack.procs import http_answers


@dataclass
class Stack:
    """The running stack as tests see it: its settings, env file, logs and status."""

    config: StackConfig
    spec: manifest.Manifest
    env: dict[str, str]
    started_here: list[str]

    def status(self) -> dict[str, dict[str, Any]]:
        result = run_stack("status", "--json", timeout=30)
        return {row["name"]: row for row in json.loads(result.stdout)}

    def log_size(self, service: str) -> int:
        path = self.config.log(service)
        return path.stat().st_size if path.exists() else 0

    def wait_for_log(
        self, service: str, needle: str, offset: int = 0, timeout: float = 20
    ) -> dict[str, Any]:
        """The first JSON log line after `offset` containing `needle`; fail after `timeout`."""
        path = self.config.log(service)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with path.open("rb") as handle:
                handle.seek(offset)
                for raw in handle.read().decode(errors="replace").splitlines():
                    if needle in raw and raw.startswith("{"):
                        return json.loads(raw)
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} not in {path} (after byte {offset}) within {timeout}s")


def _read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    spec = manifest.load()
    config = StackConfig.from_env(spec)
    if not http_answers(f"http://{config.pubsub_host}/"):
        try:
            emulator.emulator_command(config.pubsub_port)
        except emulator.EmulatorMissing as exc:
            pytest.skip(str(exc))
    status = json.loads(run_stack("status", "--json", timeout=30).stdout)
    down_before = [row["name"] for row in status if not row["up"]]
    if down_before:
        result = run_stack("up")
        assert result.returncode == 0, result.stdout + result.stderr
    saved = {k: os.environ.get(k) for k in ("PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")}
    env = _read_env(config.env_file)
    os.environ["PUBSUB_EMULATOR_HOST"] = env["PUBSUB_EMULATOR_HOST"]
    os.environ["STORAGE_EMULATOR_HOST"] = env["STORAGE_EMULATOR_HOST"]
    try:
        yield Stack(config, spec, env, down_before)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if down_before:
            run_stack("down", "--only", ",".join(down_before))


@pytest.fixture(scope="module")
def running(stack: Stack) -> Iterator[None]:
    """The stack, up, for a module that runs after test_stack.py, whose last test stops it.
    Whatever this fixture starts, it stops again at the module's end."""
    if http_answers(f"{stack.env['API_URL']}/v1/healthz"):
        yield
        return
    result = run_stack("up")
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield
    finally:
        run_stack("down")
