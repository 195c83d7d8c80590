"""The parts of bench/bench_api.py and bench/bench_waits.py that are not the measurement or the
data: the `api` process, as the local stack runs it, and a load generator (closed loop or
paced). The token issuer is tools/fixtures/issuer.py's."""

from __future__ import annotations

import http.client
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.fixtures import processes
from tools.fixtures.issuer import TokenIssuer
from tools.stack import keys

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "bench-project"


def signing_key_file(folder: Path) -> Path:
    """A throwaway service-account key beside `folder`: URLs are signed locally, as on the
    local stack."""
    return keys.ensure_signing_credentials(folder.parent / "bench-signing.json", PROJECT)


@dataclass
class ApiProcess:
    """The `api` function under functions-framework, as the local stack runs it."""

    running: processes.Started
    pool_size: int

    @property
    def port(self) -> int:
        return self.running.port

    @classmethod
    def start(cls, database_url: str, issuer: TokenIssuer) -> ApiProcess:
        from infra import manifest

        api = manifest.load().function("api")
        env = {
            **os.environ,
            **issuer.env(),
            "DATABASE_URL": database_url,
            "DB_POOL_SIZE": str(api.pool_size),
            "THREADS": os.environ.get("THREADS") or str(api.concurrency),
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        }
        (ROOT / ".local").mkdir(exist_ok=True)
        log = ROOT / ".local" / "bench-api.log"
        log.unlink(missing_ok=True)
        running = processes.function(ROOT / "functions/api/main.py", "api", env, log=log)
        processes.wait_for(lambda: _healthy(running.port), 60, f"the api function (see {log})")
        return cls(running, api.pool_size)

    def describe(self) -> str:
        from infra import manifest

        threads = os.environ.get("THREADS") or str(manifest.load().function("api").concurrency)
        workers = os.environ.get("WORKERS", "1")
        return f"{workers} worker x {threads} threads (gunicorn gthread), pool {self.pool_size}"

    def stop(self) -> None:
        self.running.stop()


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/v1/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


def percentiles(timings: Sequence[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def drive(
    port: int,
    keys: Sequence[Any],
    target: Callable[[Any], tuple[str, str]],
    clients: int,
    total: int,
    label: str = "",
    rate: float | None = None,
) -> dict[str, Any]:
    """`total` GETs from `clients` keep-alive connections, walking `keys` in order (so a cold
    run never repeats one); p50/p99 of each request as its client saw it. Without `rate` the
    clients send back to back (saturation); with it they are paced to `rate` requests/s in
    all, each on its own schedule, as people browsing would be."""
    timings: list[float] = []
    errors = [0]
    position = [0]
    lock = threading.Lock()

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        interval = clients / rate if rate else 0.0
        due = time.perf_counter() + interval * number / clients
        while True:
            if interval:
                time.sleep(max(0.0, due - time.perf_counter()))
                due += interval
            with lock:
                if position[0] >= total:
                    break
                key = keys[position[0] % len(keys)]
                position[0] += 1
            path, token = target(key)
            started = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                timings.append(elapsed)
                errors[0] += response.status != 200
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - started
    return {"label": label, **percentiles(timings), "rps": len(timings) / wall, "errors": errors[0]}
