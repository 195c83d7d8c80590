"""Job webhooks on the local stack: how long from a job's completion to its receiver's
`generation.completed`?

Run from the repository root: `python bench/bench_webhooks.py` (`make bench`). It starts a stack
of its own (fresh state folder, every port moved by PORT_SHIFT past the caller's
STACK_PORT_OFFSET, so it runs beside `make up` and the other benches' stacks), a receiver on
127.0.0.1 (the stack's loopback relaxation), and submits JOBS one-shot fallback jobs whose
webhook asks for `completed`, IN_FLIGHT at a time. For each, the latency is the receiver's
clock at arrival minus the payload's `timestamp`: the job's `completed_at`, set by the
transaction that completes it (so it includes that transaction's last milliseconds before the
commit) — render-image's publish, the relay's push, deliver-webhooks' reads, signing and POST.
Prints p50 and p99 (and max) over the jobs after a warm-up one.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_generation import remove_stack  # noqa: E402
from tools.fixtures.generation_stack import stack_command, stack_config  # noqa: E402
from tools.fixtures.webhook_receiver import Receiver, verified  # noqa: E402

JOBS = 50
IN_FLIGHT = 5
PORT_SHIFT = 400  # beside `make up` (the caller's offset) and bench_generation's stack (300)


def latencies(env: dict[str, str], count: int) -> list[float]:
    """Seconds from completion to receipt, one per job, in submission order."""
    issuer, api = env["TOKEN_ISSUER_URL"], env["API_URL"]
    token = requests.get(f"{issuer}/token", params={"user": "bench"}, timeout=10).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    secret = requests.get(f"{api}/v1/webhook-secret", headers=headers, timeout=10).json()["secret"]
    arrived: dict[str, float] = {}
    done = threading.Condition()

    def answer(received) -> int:
        payload = verified(received, secret)
        with done:
            arrived[payload["data"]["id"]] = received.at - _epoch(payload["timestamp"])
            done.notify_all()
        return 204

    receiver = Receiver(answer)
    body = {"prompt": "a fox", "webhook": receiver.url, "webhook_events": ["completed"]}

    def one(_: int) -> float:
        job = requests.post(f"{api}/v1/generations", json=body, headers=headers, timeout=30)
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]
        with done:
            if not done.wait_for(lambda: job_id in arrived, timeout=120):
                raise AssertionError(f"no webhook for job {job_id} within 120 s")
            return arrived[job_id]

    try:
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            return list(pool.map(one, range(count)))
    finally:
        receiver.close()


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    offset = int(os.environ.get("STACK_PORT_OFFSET") or 0)
    state = Path(tempfile.mkdtemp(prefix="imagegen-bench-webhooks-"))
    state.chmod(0o755)  # as root, the cluster runs as postgres and must reach it
    os.environ.update(STACK_DIR=str(state), STACK_PORT_OFFSET=str(offset + PORT_SHIFT))
    os.environ.pop("OPENAI_API_KEY", None)  # the fallback renders: no model latency in the way
    try:
        print("starting the bench's own stack ...", flush=True)
        started = time.monotonic()
        stack_command("up")
        print(f"  up in {time.monotonic() - started:.1f} s", flush=True)
        env = dict(
            line.split("=", 1)
            for line in stack_config().env_file.read_text().splitlines()
            if "=" in line
        )
        latencies(env, 1)  # warm-up: first imports and connections of every process
        measured = [seconds * 1000 for seconds in latencies(env, JOBS)]
    finally:
        remove_stack(state)
    print(f"{'jobs (1 shot, fallback), ' + str(IN_FLIGHT) + ' in flight':<52}{len(measured):8d}")
    print(f"{'completion -> receiver `completed`, p50':<52}{statistics.median(measured):8.1f} ms")
    print(f"{'completion -> receiver `completed`, p99':<52}{percentile(measured, 0.99):8.1f} ms")
    print(f"{'completion -> receiver `completed`, max':<52}{max(measured):8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
