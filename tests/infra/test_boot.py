"""Each manifest function boots from the unpacked archive alone, under functions-framework.

Only the archive is on PYTHONPATH, so a module that the archive forgot fails the import. The
event handlers will change, so their check stays generic: the process stays up and its port
answers HTTP.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from infra import manifest
from tools.fixtures.processes import free_port

FRAMEWORK = Path(sys.executable).parent / "functions-framework"
# Every function boots at once, each importing the whole archive (about 2.5 s of CPU alone): on
# a loaded 2-core machine 6 functions took 65 s and 7 took 85 s, so the budget grows with them.
BOOT_TIMEOUT_SECONDS = 15 * len(manifest.load().functions)


def _get(port: int, path: str) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None


@pytest.fixture(scope="module")
def servers(archive: Path, m, tmp_path_factory: pytest.TempPathFactory):
    """{function name: (process, port)}, all started at once, all stopped at the end."""
    src = tmp_path_factory.mktemp("unpacked")
    assert not any(src.iterdir())
    with zipfile.ZipFile(archive) as z:
        z.extractall(src)
    # A complete configuration, as on GCP; nothing listens on port 9, and liveness must not care.
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(src),
        "HOME": str(src),
        "DATABASE_URL": "postgresql://app:secret@127.0.0.1:9/imagegen",
    }
    started = {}
    try:
        for f in m.functions:
            port = free_port()
            cmd = [FRAMEWORK, "--source", src / "main.py", "--target", f.entry_point,
                   "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
            proc = subprocess.Popen(
                cmd, cwd=src, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            started[f.name] = (proc, port)
        yield started
    finally:
        for proc, _ in started.values():
            proc.terminate()
        for proc, _ in started.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_for_http(proc: subprocess.Popen, port: int, path: str) -> int:
    deadline = time.monotonic() + BOOT_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        status = _get(port, path)
        if status is not None:
            return status
        time.sleep(0.2)
    pytest.fail(f"port {port} did not answer within {BOOT_TIMEOUT_SECONDS}s")


def test_api_answers_healthz_from_the_archive(servers) -> None:
    proc, port = servers["api"]
    assert _wait_for_http(proc, port, "/v1/healthz") == 200


def test_every_event_function_boots_and_answers(servers, m) -> None:
    for f in m.functions:
        if f.trigger == "http":
            continue
        proc, port = servers[f.name]
        status = _wait_for_http(proc, port, "/")
        assert 200 <= status < 600, f.name
        assert proc.poll() is None, f"{f.name} exited after answering"
