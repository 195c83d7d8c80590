"""Many shots in flight on few database connections: render-image as it was configured (20
instances of one request each, a connection each) against the manifest's configuration (one
instance taking `concurrency` shots on a pool of `pool_size`), in one run.

Starts a throwaway PostgreSQL 15 with max_connections=40 (and TLS, for the open-cost numbers),
the Pub/Sub and GCS emulators, the OpenAI fake at 10 s per image, and render-image under
functions-framework (one gunicorn worker, THREADS as the configuration says). For each
configuration it seeds JOBS planned jobs of SHOTS shots in a fresh database and pushes every
render request at once, as Pub/Sub pushes a subscription: as many in flight as the function's
instances take, a non-2xx answer retried after the local backoff. It reports the shots in flight
at the model (the fake's peak of concurrent calls), images per second, the function's peak
connections and transactions (pg_stat_activity, sampled every 50 ms), non-2xx answers, failed
jobs and duplicate rows, the time to drain, the time in transactions per shot
(pg_stat_database), the function's and the database's CPU per shot and the function's peak
memory. Then it measures what opening a connection costs against a pooled transaction.

    python bench/bench_scale.py [--jobs 100] [--shots 10] [--latency 10]   # about 10 minutes
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure import timings_ms  # noqa: E402
from infra import manifest  # noqa: E402
from tools.fixtures import processes  # noqa: E402
from tools.fixtures.cloud import Cloud  # noqa: E402
from tools.fixtures.processes import free_port  # noqa: E402
from tools.pgcluster import SERVICE_USER, Cluster, connect  # noqa: E402
from tools.stack.procs import http_answers  # noqa: E402

MAX_CONNECTIONS = 40
TEMPLATE = "bench_template"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
BACKOFF = (1.0, 10.0)  # the local stack's retry policy (tools/stack/config.py)


@dataclass(frozen=True)
class Setup:
    """One render-image configuration, run as one process standing in for its instances."""

    label: str
    instances: int
    concurrency: int
    pool_size: int
    pool_timeout_seconds: float

    @property
    def in_flight(self) -> int:
        return self.instances * self.concurrency

    def describe(self) -> str:
        return (
            f"{self.instances} instance(s) x {self.concurrency} request(s), pool {self.pool_size}"
            f" each: THREADS={self.in_flight}, DB_POOL_SIZE={self.instances * self.pool_size},"
            f" DB_POOL_TIMEOUT_SECONDS={self.pool_timeout_seconds:g}"
        )


def setups() -> list[Setup]:
    render = manifest.load().function("render-image")
    return [  # the first as infra/functions.toml had it before issue 20
        Setup("today", instances=20, concurrency=1, pool_size=1, pool_timeout_seconds=10),
        Setup(
            "new",
            instances=1,
            concurrency=render.concurrency,
            pool_size=render.pool_size,
            pool_timeout_seconds=render.pool_timeout_seconds,
        ),
    ]


# ---- the stand-ins ---------------------------------------------------------------------------


def tls_cluster(root: Path) -> Cluster:
    """A cluster with max_connections=40 that also answers TLS (a throwaway self-signed key)."""
    plain = Cluster(root, free_port(), durable=False)
    plain.init()
    key, cert = plain.root / "server.key", plain.root / "server.crt"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True)
    key.chmod(0o600)
    if os.geteuid() == 0:  # the server runs as the postgres user (tools/pgcluster.py)
        for path in (key, cert):
            shutil.chown(path, user=SERVICE_USER)
    settings = {"max_connections": str(MAX_CONNECTIONS), "ssl": "on"}
    settings |= {"ssl_cert_file": str(cert), "ssl_key_file": str(key)}
    return Cluster(root, plain.port, durable=False, settings=settings)


class Fake:
    """tools/fake_openai in a process of its own (not sharing this process's GIL)."""

    def __init__(self, folder: Path) -> None:
        port = free_port()
        command = [sys.executable, "-m", "tools.fake_openai", "--port", str(port)]
        log = folder / "fake-openai.log"
        self.running = processes.start(command, "the OpenAI fake", port, log=log)
        self.url = self.running.url

    def reset(self, latency: float) -> None:
        requests.post(f"{self.url}/_fake/reset", timeout=5).raise_for_status()
        requests.post(
            f"{self.url}/_fake/config", json={"latency_seconds": latency}, timeout=5
        ).raise_for_status()

    def stats(self) -> dict[str, int]:
        return requests.get(f"{self.url}/_fake/stats", timeout=5).json()

    def image_calls(self) -> int:
        calls = requests.get(f"{self.url}/_fake/requests", timeout=30).json()["requests"]
        return sum(c["path"].startswith("/v1/images/") for c in calls)

    def stop(self) -> None:
        self.running.stop()


class Render:
    """render-image under functions-framework, one gunicorn worker, as a setup configures it."""

    def __init__(self, setup: Setup, database_url: str, cloud: Cloud, fake: Fake, folder: Path):
        env = {
            **os.environ,
            **cloud.environ,
            "DATABASE_URL": database_url,
            "DB_POOL_SIZE": str(setup.instances * setup.pool_size),
            "DB_POOL_TIMEOUT_SECONDS": f"{setup.pool_timeout_seconds:g}",
            "THREADS": str(setup.in_flight),
            "WORKERS": "1",
            "K_SERVICE": "render-image",
            "CLOUD_RUN_TIMEOUT_SECONDS": "300",
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": f"{fake.url}/v1",
            "LOG_LEVEL": "INFO",
        }
        log = folder / f"render-{setup.label}.log"
        source = ROOT / "functions/render_image/main.py"
        self.running = processes.function(source, "render_image", env, log=log)
        self.url = self.running.url + "/"
        processes.wait_for(lambda: http_answers(self.url), 60, "render-image's first answer")

    def usage(self) -> tuple[float, int]:
        """(CPU seconds, the largest peak RSS in bytes) over the process group (gunicorn's
        arbiter and its worker)."""
        cpu, peak = 0.0, 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if int(fields[2]) != self.running.process.pid:
                continue
            cpu += (int(fields[11]) + int(fields[12])) / TICKS
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        return cpu, peak

    def stop(self) -> None:
        self.running.stop()


# ---- one run ---------------------------------------------------------------------------------


def seed(url: str, jobs: int, shots: int) -> list[str]:
    """`jobs` planned jobs of `shots` shots, one user and session each, as plan-generation
    leaves them (processing, dispatched, with their prompt)."""
    conn = connect(url)
    try:
        rows = conn.run(
            """WITH u AS (
                   INSERT INTO users (auth_subject, email)
                   SELECT 'bench-' || n, 'bench-' || n || '@example.com'
                     FROM generate_series(1, :jobs) AS n RETURNING id),
               s AS (INSERT INTO sessions (user_id) SELECT id FROM u RETURNING id, user_id)
               INSERT INTO generation_jobs (user_id, session_id, prompt, generated_prompt,
                                            number_of_shots, status, started_at, dispatched_at,
                                            deadline_at)
               SELECT user_id, id, 'a lighthouse at dusk', 'A lighthouse at dusk, cinematic',
                      :shots, 'processing', now(), now(), now() + interval '1 hour'
                 FROM s RETURNING id""",
            jobs=jobs,
            shots=shots,
        )
    finally:
        conn.close()
    return [str(r[0]) for r in rows]


def push_body(job_id: str, index: int, attempt: int) -> dict[str, Any]:
    """A Pub/Sub push request for one render request (tools/stack/pusher.py's shape)."""
    message_id = uuid.uuid4().hex
    published = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = json.dumps({"job_id": job_id, "index": index}).encode()
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": {},
            "messageId": message_id,
            "message_id": message_id,
            "publishTime": published,
            "publish_time": published,
        },
        "subscription": "projects/local-project/subscriptions/render-image-push",
        "deliveryAttempt": attempt,
    }


class Pusher:
    """Every message pushed at once, `in_flight` at a time: a 2xx acknowledges, anything else
    comes back after the retry policy's backoff (min * 2^(attempt-1), capped at max). Gives up
    after `timeout` seconds (what is left then shows as jobs not completed)."""

    def __init__(self, url: str, in_flight: int, messages: list[tuple[str, int]]) -> None:
        self.url, self.in_flight = url, in_flight
        self.pending: list[tuple[float, str, int, int]] = [(0.0, j, i, 1) for j, i in messages]
        self.lock = threading.Lock()
        self.answers: Counter[str] = Counter()
        self.left = len(messages)
        self.stopping = threading.Event()
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=in_flight)
        self.http.mount("http://", adapter)

    def _next(self) -> tuple[float, str, int, int] | None:
        with self.lock:
            if not self.pending:
                return None
            self.pending.sort()
            return self.pending.pop(0)

    def _worker(self) -> None:
        while self.left and not self.stopping.is_set():
            taken = self._next()
            if taken is None:
                time.sleep(0.05)
                continue
            due, job_id, index, attempt = taken
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                response = self.http.post(
                    self.url, json=push_body(job_id, index, attempt), timeout=310
                )
                status: int | str = response.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            with self.lock:
                self.answers[str(status)] += 1
                if isinstance(status, int) and 200 <= status < 300:
                    self.left -= 1
                else:
                    low, high = BACKOFF
                    delay = min(low * 2 ** (attempt - 1), high)
                    self.pending.append((time.monotonic() + delay, job_id, index, attempt + 1))

    def run(self, timeout: float) -> None:
        workers = [
            threading.Thread(target=self._worker, daemon=True, name=f"push-{n}")
            for n in range(self.in_flight)
        ]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + timeout
        try:
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
        finally:
            self.stopping.set()


class Sampler(threading.Thread):
    """The function's connections and transactions (pg_stat_activity) and the shots at the
    model (the fake's calls in flight), every 50 ms: the most of each."""

    def __init__(self, url: str, database: str, fake: Fake) -> None:
        super().__init__(daemon=True)
        self.url, self.database, self.fake = url, database, fake
        self.stop = threading.Event()
        self.connections = self.transactions = self.at_model = 0

    def run(self) -> None:
        conn = connect(self.url)
        try:
            while not self.stop.is_set():
                total, busy = conn.run(
                    """SELECT count(*), count(*) FILTER (WHERE state <> 'idle')
                         FROM pg_stat_activity
                        WHERE datname = :db AND application_name LIKE 'imagegen%'""",
                    db=self.database,
                )[0]
                self.connections = max(self.connections, total)
                self.transactions = max(self.transactions, busy)
                self.at_model = max(self.at_model, self.fake.stats()["in_flight"])
                time.sleep(0.05)
        finally:
            conn.close()


def server_cpu(cluster: Cluster) -> float:
    """CPU seconds of the PostgreSQL server so far: the postmaster, the backends it reaped
    (cutime, cstime) and its live children (background workers, open sessions)."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == postmaster:
            total += sum(int(f) for f in fields[11:15]) / TICKS
        elif int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def transaction_ms(url: str, database: str) -> tuple[int, float]:
    """(commits, ms in transactions: active + idle in transaction) of a database so far."""
    conn = connect(url)
    try:
        row = conn.run(
            """SELECT xact_commit, active_time + idle_in_transaction_time
                 FROM pg_stat_database WHERE datname = :db""",
            db=database,
        )[0]
    finally:
        conn.close()
    return int(row[0]), float(row[1])


def run(
    setup: Setup, cluster: Cluster, cloud: Cloud, fake: Fake, folder: Path, args: Any
) -> dict[str, Any]:
    database = f"bench_{setup.label}"
    admin = connect(cluster.url("postgres"))
    admin.run(f"CREATE DATABASE {database} TEMPLATE {TEMPLATE}")
    admin.close()
    url = cluster.url(database)
    ids = seed(url, args.jobs, args.shots)
    fake.reset(args.latency)
    render = Render(setup, url, cloud, fake, folder)
    try:
        cpu_before, _ = render.usage()
        commits_before, busy_before = transaction_ms(cluster.url("postgres"), database)
        server_before = server_cpu(cluster)
        sampler = Sampler(cluster.url("postgres"), database, fake)
        sampler.start()
        pusher = Pusher(
            render.url, setup.in_flight, [(j, i) for j in ids for i in range(1, args.shots + 1)]
        )
        started = time.monotonic()
        pusher.run(args.timeout)
        drained = time.monotonic() - started
        sampler.stop.set()
        sampler.join()
        cpu_after, peak_rss = render.usage()
    finally:
        render.stop()
    time.sleep(1.5)  # the backends' statistics reach pg_stat_database as they exit
    commits_after, busy_after = transaction_ms(cluster.url("postgres"), database)
    server_after = server_cpu(cluster)
    conn = connect(url)
    try:
        (jobs,) = conn.run(
            """SELECT json_object_agg(status, n) FROM (
                   SELECT status, count(*) AS n FROM generation_jobs GROUP BY status) AS s"""
        )[0]
        images, distinct = conn.run(
            """SELECT count(*), count(DISTINCT (generation_job_id, generation_index))
                 FROM generated_images"""
        )[0]
    finally:
        conn.close()
    shots = args.jobs * args.shots
    failed_answers = sum(n for status, n in pusher.answers.items() if not status.startswith("2"))
    return {
        "setup": setup,
        "in flight (peak, at the model)": max(sampler.at_model, fake.stats()["peak_in_flight"]),
        "images per second": images / drained,
        "db connections (peak)": sampler.connections,
        "db transactions at once (peak)": sampler.transactions,
        "non-2xx answers (retried)": failed_answers,
        "jobs not completed": shots // args.shots - (jobs or {}).get("completed", 0),
        "duplicate rows": images - distinct,
        "images recorded": images,
        "model calls": fake.image_calls(),
        "time to drain (s)": drained,
        "transactions per shot": (commits_after - commits_before) / shots,
        "ms in transactions per shot": (busy_after - busy_before) / shots,
        "cpu ms per shot": (cpu_after - cpu_before) * 1000 / shots,
        "database cpu ms per shot": (server_after - server_before) * 1000 / shots,
        "peak memory (MiB)": peak_rss / 2**20,
        "answers": dict(pusher.answers),
    }


# ---- opening a connection ----------------------------------------------------------------------


def open_costs(cluster: Cluster, runs: int = 30) -> dict[str, float]:
    """Median ms of what opening a connection costs here, against a pooled transaction.

    The Cloud SQL connector hands pg8000 a TLS socket and no ssl_context, so pg8000 builds a
    default SSL context for every connection it opens (ssl.create_default_context, which loads
    the system's CA certificates); the TLS 1.3 handshake and the login follow. The connector's
    one-time cost per instance is its RSA key (then two Admin API calls, not measurable here).
    """
    import asyncio

    import pg8000.native
    from google.cloud.sql.connector.utils import generate_keys

    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    tls.minimum_version = ssl.TLSVersion.TLSv1_3
    login = {"user": "postgres", "password": cluster.password, "host": "127.0.0.1"}
    login |= {"port": cluster.port, "database": TEMPLATE}

    def timed(action: Any, times: int = runs) -> float:
        return statistics.median(timings_ms(action, times, warm_up=0))

    from shared import config, db

    os.environ["DATABASE_URL"] = cluster.url(TEMPLATE)
    config.settings.cache_clear()
    db.dispose()

    def pooled() -> None:
        with db.transaction() as conn:
            db.one(conn, "SELECT 1 AS one")

    pooled()  # warm: the connection is open and the statement prepared
    costs = {
        "connector, once per instance: its RSA key": timed(
            lambda: asyncio.run(generate_keys()), times=5
        ),
        "pg8000's default SSL context (each connection)": timed(ssl.create_default_context),
        "open: TCP + SCRAM login, no TLS": timed(
            lambda: pg8000.native.Connection(**login, ssl_context=False).close()
        ),
        "open: TCP + TLS 1.3 handshake + SCRAM login": timed(
            lambda: pg8000.native.Connection(**login, ssl_context=tls).close()
        ),
        "pooled transaction (checkout, SELECT 1, commit)": timed(pooled),
    }
    db.dispose()
    return costs


# ---- the report ------------------------------------------------------------------------------

ROWS = [
    ("in flight (peak, at the model)", "{:.0f}"),
    ("images per second", "{:.1f}"),
    ("db connections (peak)", "{:.0f}"),
    ("db transactions at once (peak)", "{:.0f}"),
    ("non-2xx answers (retried)", "{:.0f}"),
    ("jobs not completed", "{:.0f}"),
    ("duplicate rows", "{:.0f}"),
    ("images recorded", "{:.0f}"),
    ("model calls", "{:.0f}"),
    ("time to drain (s)", "{:.1f}"),
    ("transactions per shot", "{:.1f}"),
    ("ms in transactions per shot", "{:.2f}"),
    ("cpu ms per shot", "{:.1f}"),
    ("database cpu ms per shot", "{:.1f}"),
    ("peak memory (MiB)", "{:.0f}"),
]


def report(results: list[dict[str, Any]], args: Any) -> bool:
    print(
        f"\nrender-image: {args.jobs} jobs x {args.shots} shots pushed at once, {args.latency:g} s"
        f" per image at the fake, PostgreSQL max_connections={MAX_CONNECTIONS}"
    )
    for r in results:
        print(f"  {r['setup'].label}: {r['setup'].describe()}")
    print(f"\n{'':<34}" + "".join(f"{r['setup'].label:>12}" for r in results))
    for name, shape in ROWS:
        print(f"{name:<34}" + "".join(f"{shape.format(r[name]):>12}" for r in results))
    new = results[-1]
    shots = args.jobs * args.shots
    ok = (
        new["in flight (peak, at the model)"] >= min(200, shots)
        and new["db connections (peak)"] <= 20
        and all(
            r["non-2xx answers (retried)"] == 0
            and r["jobs not completed"] == 0
            and r["duplicate rows"] == 0
            and r["images recorded"] == shots
            for r in results
        )
    )
    print("\ntarget (new): >= 200 in flight, <= 20 connections; both: 0 errors, 0 duplicates:")
    print("  met" if ok else f"  NOT met (answers: {[r['answers'] for r in results]})")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--latency", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per configuration")
    parser.add_argument("--only", choices=[s.label for s in setups()])
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    folder.chmod(0o755)
    cluster = tls_cluster(folder / "pg")
    cloud = fake = None
    try:
        cluster.start()
        admin = connect(cluster.url("postgres"))
        admin.run(f"CREATE DATABASE {TEMPLATE}")
        admin.close()
        os.environ.update(DATABASE_URL=cluster.url(TEMPLATE), LOG_LEVEL="WARNING")
        from shared import db, migrate

        migrate.migrate()
        db.dispose()
        cloud, fake = Cloud(), Fake(folder)
        results = [
            run(setup, cluster, cloud, fake, folder, args)
            for setup in setups()
            if args.only in (None, setup.label)
        ]
        ok = report(results, args)
        print("\nopening a connection against a pooled transaction (median, this machine):")
        for name, ms in open_costs(cluster).items():
            print(f"  {name:<50}{ms:>8.2f} ms")
        print(f"logs: {folder}")
        return 0 if ok else 1
    finally:
        if fake is not None:
            fake.stop()
        if cloud is not None:
            cloud.stop()
        cluster.destroy()


if __name__ == "__main__":
    sys.exit(main())
