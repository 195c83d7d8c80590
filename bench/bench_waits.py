"""Blocking reads at scale: 200 clients waiting on one api process, woken by the commits that
finish their jobs.

Starts a throwaway PostgreSQL 15 and the `api` function under functions-framework as the local
stack runs it (one gunicorn worker, the manifest's concurrency as threads, its pool size). Each
of 200 clients reads its own job, then asks again with `If-None-Match` and `Prefer: wait=60`.
This script finishes the jobs with plain commits, first one at a time (25 ms apart, 200 down to
101 still waiting), then the other 100 in one commit, and measures each wake-up from the commit
to the waiting client's answer. A sampler reads pg_stat_activity throughout: the api's
connections (its pool, and its one LISTEN connection).

    python bench/bench_waits.py          # about a minute
"""

from __future__ import annotations

import http.client
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api_support import PROJECT, ApiProcess, percentiles  # noqa: E402
from tools.fixtures import processes  # noqa: E402
from tools.fixtures.issuer import TokenIssuer  # noqa: E402
from tools.pgcluster import connect  # noqa: E402

WAITERS = int(os.environ.get("BENCH_WAITERS", "200"))
ONE_BY_ONE = WAITERS // 2
GAP_SECONDS = 0.025


def prepare(url: str, api: ApiProcess, token: str) -> list[str]:
    """WAITERS processing jobs of the token's user, created through SQL."""
    me = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    me.request("GET", "/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.getresponse().status == 200
    conn = connect(url)
    try:
        rows = conn.run(
            """WITH s AS (INSERT INTO sessions (user_id) SELECT id FROM users RETURNING id, user_id)
               INSERT INTO generation_jobs (user_id, session_id, prompt, status, started_at)
               SELECT s.user_id, s.id, 'waiting ' || n, 'processing', now()
                 FROM s, generate_series(1, :n) AS n RETURNING id""",
            n=WAITERS,
        )
    finally:
        conn.close()
    return [str(r[0]) for r in rows]


class Sampler(threading.Thread):
    """The api's connections, sampled from pg_stat_activity every 10 ms: the most seen."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.most, self.listening = url, threading.Event(), 0, 0

    def run(self) -> None:
        conn = connect(self.url)
        while not self.stop.is_set():
            total, listen = conn.run(
                """SELECT count(*), count(*) FILTER (WHERE query LIKE 'LISTEN%')
                     FROM pg_stat_activity WHERE application_name LIKE 'imagegen%'"""
            )[0]
            self.most, self.listening = max(self.most, total), max(self.listening, listen)
            time.sleep(0.01)
        conn.close()


def waiter(port: int, token: str, job_id: str, answers: dict[str, Any]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    auth = {"Authorization": f"Bearer {token}"}
    conn.request("GET", f"/v1/generations/{job_id}", headers=auth)
    first = conn.getresponse()
    first.read()
    answers[job_id] = {"sent": time.perf_counter()}
    conn.request(
        "GET",
        f"/v1/generations/{job_id}",
        headers={**auth, "If-None-Match": first.headers["ETag"], "Prefer": "wait=60"},
    )
    response = conn.getresponse()
    response.read()
    answers[job_id].update(answered=time.perf_counter(), status=response.status)
    conn.close()


def finish(url: str, ids: list[str], commits: dict[str, float]) -> None:
    conn = connect(url)
    try:
        for job_id in ids[:ONE_BY_ONE]:  # one commit each
            conn.run(
                "UPDATE generation_jobs SET status = 'completed', completed_at = now()"
                " WHERE id = CAST(:id AS uuid)",
                id=job_id,
            )
            commits[job_id] = time.perf_counter()
            time.sleep(GAP_SECONDS)
        rest = ids[ONE_BY_ONE:]
        conn.run(  # one commit for all the others
            "UPDATE generation_jobs SET status = 'completed', completed_at = now()"
            " WHERE id = ANY(CAST(:ids AS uuid[]))",
            ids=rest,
        )
        done = time.perf_counter()
        commits.update(dict.fromkeys(rest, done))
    finally:
        conn.close()


def main() -> int:
    cluster = processes.throwaway_cluster("bench-waits-")
    issuer = TokenIssuer(PROJECT)
    api: ApiProcess | None = None
    try:
        url = cluster.ensure_database("bench")
        os.environ.update(DATABASE_URL=url, LOG_LEVEL="WARNING")
        from shared import db, migrate

        migrate.migrate()
        db.dispose()
        api = ApiProcess.start(url, issuer)
        print(f"api: functions-framework, {api.describe()}")
        token = issuer.token("waiter")
        ids = prepare(url, api, token)

        sampler = Sampler(url)
        sampler.start()
        answers: dict[str, Any] = {}
        threads = [
            threading.Thread(target=waiter, args=(api.port, token, job_id, answers))
            for job_id in ids
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(answers) < WAITERS or not sampler.listening:
            assert time.monotonic() < deadline, "the waiters did not start"
            time.sleep(0.05)
        time.sleep(2)  # every second request is in and waiting
        early = [a for a in answers.values() if "answered" in a]
        commits: dict[str, float] = {}
        finish(url, ids, commits)
        for t in threads:
            t.join(timeout=90)
        sampler.stop.set()
        sampler.join()

        ok = not early and all(a.get("status") == 200 for a in answers.values())
        one = [(answers[i]["answered"] - commits[i]) * 1000 for i in ids[:ONE_BY_ONE]]
        burst = [(answers[i]["answered"] - commits[i]) * 1000 for i in ids[ONE_BY_ONE:]]
        print(f"\n{WAITERS} clients waiting on one api process (If-None-Match + Prefer: wait=60)")
        print(f"{'wake-up: commit to answer':<44}{'p50 ms':>9}{'p99 ms':>9}")
        for label, timings in [
            (f"{ONE_BY_ONE} jobs finished one by one ({WAITERS}-{WAITERS - ONE_BY_ONE + 1} waiting)", one),
            (f"{WAITERS - ONE_BY_ONE} jobs finished in one commit", burst),
        ]:  # fmt: skip
            p = percentiles(timings)
            print(f"{label:<44}{p['p50']:>9.1f}{p['p99']:>9.1f}")
        print(
            f"database connections of the api meanwhile: at most {sampler.most} "
            f"(pool {api.pool_size} + {sampler.listening} LISTEN)"
        )
        print(f"answers: {sum(a.get('status') == 200 for a in answers.values())}/{WAITERS} 200, "
              f"{len(early)} before their job finished")  # fmt: skip
        return 0 if ok and sampler.most <= api.pool_size + 1 else 1
    finally:
        if api is not None:
            api.stop()
        issuer.stop()
        cluster.destroy()


if __name__ == "__main__":
    sys.exit(main())
