"""The generation functions of a running local stack, pointed at an OpenAI fake process.

Used by tests/stack/test_generation_stack.py and bench/bench_generation.py. `GenerationStack`
starts `python -m tools.fake_openai` on a free port and restarts plan-generation and
render-image with OPENAI_BASE_URL pointing at it (and any other settings given); `heal()` runs
`up` with the same settings (after a crash); `restore()` restarts them with the environment
they had. Anything else (threads, leases) is as `make up` sets it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

from infra import manifest
from tools.pgcluster import connect
from tools.stack.config import StackConfig
from tools.stack.procs import port_answers, running_pid

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("plan-generation", "render-image")
T = TypeVar("T")


def stack_command(
    *args: str, env: dict[str, str] | None = None, drop: tuple[str, ...] = (), timeout: float = 180
) -> str:
    """`python -m tools.stack ...` with `env` added and `drop` removed; its output."""
    child = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in drop}
    result = subprocess.run(
        [sys.executable, "-m", "tools.stack", *args],
        cwd=ROOT,
        env=child,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"tools.stack {' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout


def wait_for(probe: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """The first truthy answer of `probe`; an AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {answer!r})")
        time.sleep(interval)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GenerationStack:
    """The stack's generation functions against a fake OpenAI; API, database and fake helpers."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env  # the stack's stack.env
        self.api_url = env["API_URL"]
        self.fake_port = _free_port()
        self.fake_url = f"http://127.0.0.1:{self.fake_port}"
        log = (Path(env["STACK_DIR"]) / "logs" / "fake-openai.log").open("ab")
        self.fake = subprocess.Popen(
            [sys.executable, "-m", "tools.fake_openai", "--port", str(self.fake_port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._fake_answers, 20, "the OpenAI fake")
        self.base_env = {
            "OPENAI_API_KEY": "sk-stack-fake",
            "OPENAI_BASE_URL": f"{self.fake_url}/v1",
            "OPENAI_MAX_RETRIES": "0",
        }
        self.settings = dict(self.base_env)
        self.configure()

    def _fake_answers(self) -> bool:
        try:
            return requests.get(f"{self.fake_url}/_fake/requests", timeout=1).ok
        except requests.RequestException:
            return False

    def configure(self, **extra: str) -> None:
        """Restart the generation functions with the fake and `extra` settings."""
        self.settings = {**self.base_env, **extra}
        self._restart(env=self.settings)

    def heal(self) -> None:
        """`up` with the current settings: starts whatever died, as `make up` does."""
        stack_command("up", env=self.settings)

    def restore(self) -> None:
        """Restart the generation functions as the stack had them, and stop the fake."""
        self._restart(drop=(*self.base_env, "OPENAI_FALLBACK_ON_ERROR"))
        self.fake.terminate()
        self.fake.wait(timeout=10)

    def _restart(self, **how: Any) -> None:
        """down, then up; fails loudly if an old process still holds a port."""
        config = stack_config()
        ports = [config.function_ports[name] for name in FUNCTIONS]
        stack_command("down", "--only", ",".join(FUNCTIONS))
        wait_for(lambda: not any(port_answers(p) for p in ports), 20, "the old functions to stop")
        stack_command("up", **how)
        for name in FUNCTIONS:
            assert running_pid(config.pid_file(name)), f"{name} did not start"

    # The fake's control API.
    def fake_control(self, path: str, body: Any = None) -> Any:
        if body is None:
            return requests.get(f"{self.fake_url}/_fake/{path}", timeout=5).json()
        return requests.post(f"{self.fake_url}/_fake/{path}", json=body, timeout=5).json()

    # The API, as a user.
    def token(self, user: str | None = None) -> str:
        name = user or f"user-{uuid.uuid4().hex[:8]}"
        answer = requests.get(
            f"{self.env['TOKEN_ISSUER_URL']}/token", params={"user": name}, timeout=5
        )
        return answer.json()["token"]

    def api(
        self, token: str, method: str, path: str, body: Any = None, headers: dict | None = None
    ) -> requests.Response:
        return requests.request(
            method,
            f"{self.api_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
            timeout=30,
        )

    def finished(self, token: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
        """The job once it is completed, failed or cancelled."""

        def probe() -> dict[str, Any] | None:
            job = self.api(token, "GET", f"/v1/generations/{job_id}").json()
            return job if job["status"] in ("completed", "failed", "cancelled") else None

        return wait_for(probe, timeout, f"job {job_id} to finish", interval=0.3)

    # The database.
    def sql(self, statement: str, **params: Any) -> list[dict[str, Any]]:
        url = self.env["DATABASE_URL"]
        conn = connect(url)
        try:
            result = conn.run(statement, **params) or []
            names = [c["name"] for c in conn.columns or []]
            return [dict(zip(names, row, strict=True)) for row in result]
        finally:
            conn.close()


def stack_config() -> StackConfig:
    return StackConfig.from_env(manifest.load())
