"""Cold start of every function: spawn under functions-framework to its first answer, and the
peak RSS, against two floors measured in the same run: a hello-world importing the libraries the
function's requests need (FLOORS), and a bare hello-world of the same trigger kind.

    .venv/bin/python bench/bench_cold_start.py [runs]

Each function starts as the local stack starts it (`python -m functions_framework --source ...
--target ...`), against a throwaway migrated PostgreSQL (tools.pgcluster), and answers its
probe: its lightest real request (PROBES). The first answer therefore includes what that request
loads on first use. Each of `runs` rounds (default 5) starts the function, its floor and the
bare hello-world once, in turn, so that the load of a shared machine weighs on the three alike;
the ratios are medians over rounds. Peak RSS is the largest VmHWM among the server's processes.
Targets (issue 14): every function at most 1.3x its floor, the api at most 2.5x the bare
hello-world. Exits 1 when a target is missed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra import manifest  # noqa: E402
from tools.fixtures import processes  # noqa: E402
from tools.stack import events  # noqa: E402

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
TIMEOUT_SECONDS = 60
FLOOR_TARGET, BARE_TARGET = 1.3, 2.5
BUCKET = "bench-bucket"
DB = ("pg8000.dbapi", "sqlalchemy.pool")
# pydantic's BaseModel: `import pydantic` alone loads a shell whose names load when first read
# (about a third of the import time a model needs), which would leave most of pydantic out of the floor.
MODELS = "pydantic.main"
# The libraries that the probe, and every request of the function that does its work, need:
# nothing else should load before its first use.
FLOORS: dict[str, tuple[str, ...]] = {
    # An authenticated request: models, the token's verification, the caller's users row.
    "api": (MODELS, "google.auth.jwt", "requests", *DB),
    # An upload: read its header from the bucket, identify it, register it.
    "register-upload": ("google.cloud.storage", "PIL.Image", *DB),
    # Claim the plan, brief the job's parameters, publish one render message per shot.
    "plan-generation": (*DB, MODELS, "google.cloud.pubsub_v1"),
    # Claim the shot, draw it (the fallback, without OpenAI), store it, record it.
    "render-image": (*DB, MODELS, "google.cloud.storage", "PIL.Image"),
    # Read the outbox row, delete the objects it names.
    "purge-objects": (*DB, "google.cloud.storage"),
    # Every task reads the database.
    "maintenance": DB,
    # Read the job; one that asked for the event: show it (models, signed URLs), sign, POST.
    "deliver-webhooks": (*DB, MODELS, "google.cloud.storage"),
}
HELLO = """import functions_framework
{imports}

@functions_framework.{kind}
def hello({argument}):
    return {answer}
"""


@dataclass(frozen=True)
class Probe:
    """A request: GET `path`, or POST `body` with `headers`."""

    path: str = "/"
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def send(self, port: int) -> int:
        answer = requests.request(
            "GET" if self.body is None else "POST",
            f"http://127.0.0.1:{port}{self.path}",
            data=self.body,
            headers=dict(self.headers),
            timeout=TIMEOUT_SECONDS,
        )
        return answer.status_code


def _push(payload: dict[str, object]) -> Probe:
    """A Pub/Sub push body, as the relay and Pub/Sub send it."""
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    body = {
        "message": {"data": data, "messageId": "1", "publishTime": "2026-12-05T00:00:00Z"},
        "subscription": "projects/bench/subscriptions/bench-push",
    }
    return Probe(body=json.dumps(body).encode(), headers=(("Content-Type", "application/json"),))


def _finalized(name: str) -> Probe:
    resource = {"bucket": BUCKET, "name": name, "generation": 1, "size": 1000}
    headers, body = events.finalized(resource, events.event_id())
    return Probe(body=body, headers=tuple(headers.items()))


# The lightest real request of each function.
PROBES = {
    "api": Probe("/v1/healthz"),  # liveness, as the local stack probes it
    # the most frequent event: one of the system's own objects, ignored
    "register-upload": _finalized(f"generated/{uuid.uuid4()}/1_20261205T000000000000Z.jpg"),
    "plan-generation": _push({"job_id": str(uuid.uuid4())}),  # a job already gone: acknowledged
    "render-image": _push({"job_id": str(uuid.uuid4()), "index": 1}),
    "purge-objects": _push({"outbox_id": str(uuid.uuid4())}),  # a purge already done
    "maintenance": _push({"task": "sweep_jobs"}),  # on an empty database
    # the most frequent event: a job's finish (every job's is published), here of one gone
    "deliver-webhooks": _push(
        {
            "event": "finished",
            "job_id": str(uuid.uuid4()),
            "finished_at": "2026-12-05T00:00:00+00:00",
            "event_id": str(uuid.uuid4()),
        }
    ),
}


def _peak_rss_mib(pgid: int) -> float:
    """The largest VmHWM among the processes of a group."""
    peak = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getpgid(int(entry.name)) == pgid:
                status = (entry / "status").read_text()
                peak = max(peak, int(status.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError, ValueError):
            continue
    return peak / 1024


@dataclass(frozen=True)
class Server:
    """What to spawn: a source file, its target, and its environment."""

    source: Path
    target: str
    env: dict[str, str]


def cold_start(server: Server, probe: Probe) -> tuple[float, float]:
    """Seconds from spawn to the probe's first 2xx answer, and the peak RSS in MiB."""
    port = processes.free_port()
    command = [sys.executable, "-m", "functions_framework", "--source", str(server.source)]
    command += ["--target", server.target, "--host=127.0.0.1", f"--port={port}"]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.monotonic() - started < TIMEOUT_SECONDS:
            try:
                status = probe.send(port)
            except requests.ConnectionError:
                time.sleep(0.005)
                continue
            if not 200 <= status < 300:
                raise SystemExit(f"{server.source} answered {status} to its probe")
            return time.monotonic() - started, _peak_rss_mib(process.pid)
        raise SystemExit(f"{server.source} did not answer within {TIMEOUT_SECONDS} s")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def rounds(servers: list[Server], probe: Probe) -> list[list[tuple[float, float]]]:
    """RUNS rounds, each starting every server once in turn (so that the load of a shared
    machine weighs on all of them alike): [round][server] -> (seconds, peak RSS MiB)."""
    return [[cold_start(server, probe) for server in servers] for _ in range(RUNS)]


def median_of(found: list[list[tuple[float, float]]], server: int, field: int) -> float:
    return statistics.median(run[server][field] for run in found)


def median_ratio(found: list[list[tuple[float, float]]], server: int, other: int) -> float:
    """The median over rounds of one server's time over another's in the same round."""
    return statistics.median(run[server][0] / run[other][0] for run in found)


def hello_world(folder: Path, name: str, kind: str, libraries: tuple[str, ...]) -> Path:
    source = folder / f"{name}.py"
    source.write_text(
        HELLO.format(
            imports="\n".join(f"import {library}" for library in libraries),
            kind=kind,
            argument="request" if kind == "http" else "event",
            answer='"ok"' if kind == "http" else "None",
        )
    )
    return source


def main() -> int:
    spec = manifest.load()
    folder = Path(tempfile.mkdtemp(prefix="bench-cold-start-"))
    folder.chmod(0o755)
    cluster = processes.throwaway_cluster("bench-cold-start-pg-")
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DB_"))},
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": cluster.url("postgres"),
            "BUCKET_NAME": BUCKET,
            "GCP_PROJECT": "bench",
            "LOG_LEVEL": "WARNING",
        }
        subprocess.run([sys.executable, "-m", "shared.migrate"], cwd=ROOT, env=env, check=True)
        return report(spec, folder, env)
    finally:
        cluster.destroy()
        shutil.rmtree(folder, ignore_errors=True)


def report(spec: manifest.Manifest, folder: Path, env: dict[str, str]) -> int:
    print(f"{RUNS} rounds of cold starts: medians of the times, and of the ratios within a round;")
    print("peak RSS is the largest VmHWM among the server's processes")
    print(f"  {'function':16} {'first answer':>12} {'floor':>8} {'bare':>8} {'x floor':>7}"
          f" {'x bare':>6}  {'RSS':>9} {'floor RSS':>9} {'bare RSS':>9}")  # fmt: skip
    missed = []
    for f in spec.functions:
        kind = "http" if f.trigger == "http" else "cloud_event"
        floor = hello_world(folder, f"floor_{f.entry_point}", kind, FLOORS[f.name])
        bare = hello_world(folder, f"bare_{kind}", kind, ())
        function_env = {**env, "DB_POOL_SIZE": str(f.pool_size)}
        servers = [
            Server(ROOT / f.source, f.entry_point, function_env),
            Server(floor, "hello", env),
            Server(bare, "hello", env),
        ]
        found = rounds(servers, PROBES[f.name])
        ms = [median_of(found, i, 0) * 1000 for i in range(3)]
        rss = [median_of(found, i, 1) for i in range(3)]
        over_floor, over_bare = median_ratio(found, 0, 1), median_ratio(found, 0, 2)
        print(f"  {f.name:16} {ms[0]:9.0f} ms {ms[1]:5.0f} ms {ms[2]:5.0f} ms {over_floor:6.2f}x"
              f" {over_bare:5.2f}x  {rss[0]:5.1f} MiB {rss[1]:5.1f} MiB {rss[2]:5.1f} MiB")  # fmt: skip
        if over_floor > FLOOR_TARGET:
            missed.append(f"{f.name} is {over_floor:.2f}x its floor (target {FLOOR_TARGET}x)")
        if f.trigger == "http" and over_bare > BARE_TARGET:
            missed.append(
                f"{f.name} is {over_bare:.2f}x the bare hello-world (target {BARE_TARGET}x)"
            )
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
