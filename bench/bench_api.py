"""Latency of `GET /v1/sessions` and of a session's gallery page against the real `api` function.

Seeds 100k users, 1M sessions, 2.5M jobs and 10M generated images into a throwaway PostgreSQL 15
(generate_series inside the server, triggers and foreign-key checks off while loading, the
secondary indexes built afterwards by the migration), starts the `api` function under
functions-framework (one gunicorn worker with the manifest's concurrency as threads, as on GCP)
with the manifest's pool size, and drives it with 50 concurrent keep-alive clients. Prints the load time, EXPLAIN
of both queries, the cost of signing one URL with and without the cache, and p50/p99 side by
side: SQL alone, one client, 50 clients with cold and warm signed-URL caches.

    python bench/bench_api.py            # full size (about 10-15 minutes on 2 cores)
    BENCH_SCALE=0.01 python bench/bench_api.py   # 1k users, 10k sessions, 100k images
    BENCH_KEEP=1 ...                     # keep .local/bench-pg (reused at the same scale)
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api_seed import seed  # noqa: E402
from bench.api_support import (  # noqa: E402
    PROJECT,
    ApiProcess,
    drive,
    percentiles,
    signing_key_file,
)
from bench.measure import timings_ms  # noqa: E402
from tools.fixtures.issuer import TokenIssuer  # noqa: E402
from tools.pgcluster import Cluster  # noqa: E402

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
RATE = float(os.environ.get("BENCH_RATE", "100"))  # requests/s in all, for the paced runs
KEEP = os.environ.get("BENCH_KEEP") == "1"


def sql_latency(label: str, action: Callable[[], object], runs: int = 500) -> dict[str, Any]:
    # warm-up: the pool's connection, its prepared statement, the cache
    timings = timings_ms(action, runs, warm_up=runs // 5)
    return {"label": label, **percentiles(timings), "rps": None}


def explain(sql: str, params: dict[str, Any]) -> tuple[str, bool]:
    from shared import db

    with db.transaction() as conn:
        plan = [r["QUERY PLAN"] for r in db.rows(conn, "EXPLAIN (ANALYZE, BUFFERS) " + sql, params)]
    text = "\n".join(plan)
    return text, "Seq Scan" not in text and "Index" in text


def prewarm(url: str, indexes: set[str]) -> str:
    """Read the indexes the plans use into shared buffers, as a serving database has them: a
    freshly started cluster (and a page cache this machine keeps small) would time disk reads."""
    from tools.pgcluster import connect

    conn = connect(url, timeout=3600)
    try:
        started = time.monotonic()
        conn.run("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        blocks = sum(conn.run("SELECT pg_prewarm(:name)", name=name)[0][0] for name in indexes)
    finally:
        conn.close()
    return f"{', '.join(sorted(indexes))}: {blocks * 8 // 1024} MiB in {time.monotonic() - started:.0f} s"


def signing_cost() -> tuple[float, float]:
    """(ms to sign one URL, ms for a cache hit), in this process."""
    from shared import storage

    storage.signed_url("generated/warm-up.jpg")
    started = time.perf_counter()
    for i in range(200):
        storage.signed_url(f"generated/bench/{i}.jpg")
    cold = (time.perf_counter() - started) / 200 * 1000
    storage.signed_get_urls(["generated/bench/hit.jpg"])
    started = time.perf_counter()
    for _ in range(2000):
        storage.signed_get_urls(["generated/bench/hit.jpg"])
    warm = (time.perf_counter() - started) / 2000 * 1000
    return cold, warm


def main() -> int:
    root = ROOT / ".local" / "bench-pg"
    cluster = Cluster(root, int(os.environ.get("BENCH_PG_PORT", "54399")), durable=False)
    issuer = TokenIssuer(PROJECT)
    api: ApiProcess | None = None
    try:
        cluster.start()
        url = cluster.url("bench")
        load = seed(cluster, url, SCALE)
        print(f"data: {load['counts']}")
        print(f"load: {load['seconds']:.0f} s" + (" (reused)" if load["reused"] else ""))
        os.environ.update(
            DATABASE_URL=url,
            SIGNING_CREDENTIALS_FILE=str(signing_key_file(root)),
            STORAGE_EMULATOR_HOST="http://127.0.0.1:9",  # signing makes no call to it
            **issuer.env(),
        )
        from shared.queries import generated_images, sessions

        users, galleries = load["users"], load["sessions"]
        rng = random.Random(7)
        user_id = rng.choice(users)[0]
        list_params = {"user_id": user_id, "limit": 21, "after_updated_at": None, "after_id": None}
        gallery_owner, session_id = rng.choice(galleries)
        gallery_params = {
            "session_id": session_id,
            "user_id": gallery_owner,
            "limit": 21,
            "after_created_at": None,
            "after_job_id": None,
            "after_index": 0,
        }
        ok = True
        used: set[str] = set()
        for name, sql, params in [
            ("GET /v1/sessions", sessions._LIST_FOR_USER, list_params),
            ("gallery page", generated_images._GALLERY_PAGE, gallery_params),
        ]:
            plan, indexed = explain(sql, params)
            used |= set(re.findall(r" using (\w+)", plan))
            ok &= indexed
            print(f"\nEXPLAIN {name}: {'index scans only' if indexed else 'NOT INDEXED'}\n{plan}")

        print(f"\nprewarmed {prewarm(url, used)}")
        from shared import db

        def list_sql() -> None:
            with db.transaction() as conn:
                sessions.list_for_user(conn, user_id=rng.choice(users)[0], limit=21)

        def gallery_sql() -> None:
            with db.transaction() as conn:
                owner, page = rng.choice(galleries)
                generated_images.gallery_page(conn, session_id=page, user_id=owner, limit=21)

        rows = [sql_latency("sessions SQL (1 client)", list_sql)]
        rows.append(sql_latency("gallery SQL (1 client)", gallery_sql))
        db.dispose()
        cold_sign, warm_sign = signing_cost()
        print(f"\nsigning one URL: {cold_sign:.2f} ms; cached: {warm_sign * 1000:.1f} µs")

        api = ApiProcess.start(url, issuer)
        print(f"api: functions-framework, {api.describe()}")
        tokens = {uid: issuer.token(subject) for uid, subject in users}
        list_target = lambda u: ("/v1/sessions?limit=20", tokens[u])  # noqa: E731

        def gallery_target(key: tuple[str, str]) -> tuple[str, str]:
            uid, sid = key
            return f"/v1/sessions/{sid}/images?limit=20", tokens[uid]

        # Cold runs walk keys no earlier run has touched; warm runs repeat 20 of them.
        lists = list(tokens)
        rng.shuffle(lists)
        pages = [key for key in galleries if key[0] in tokens]
        rng.shuffle(pages)
        drive(api.port, lists[:5], list_target, 1, 50)  # warm the pool and the process
        lists = lists[5:]
        k = min(200, len(lists) // 3, len(pages) // 3)  # requests per cold run
        n, c = REQUESTS, CLIENTS
        rows += [
            drive(api.port, lists[:k], list_target, 1, k, "sessions, 1 client, cold"),
            drive(api.port, lists[k : 2 * k], list_target, c, k, f"sessions, {c} paced, cold", RATE),
            drive(api.port, lists[:20], list_target, c, n, f"sessions, {c} paced, warm", RATE),
            drive(api.port, lists[:20], list_target, c, n, f"sessions, {c} saturating, warm"),
            drive(api.port, pages[:k], gallery_target, 1, k, "gallery, 1 client, cold"),
            drive(api.port, pages[k : 2 * k], gallery_target, c, k, f"gallery, {c} paced, cold", RATE),
            drive(api.port, pages[:20], gallery_target, c, n, f"gallery, {c} paced, warm", RATE),
            drive(api.port, pages[:20], gallery_target, c, n, f"gallery, {c} saturating, warm"),
        ]  # fmt: skip
        print(f"\n{'scenario':<34}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>8}{'errors':>8}")
        for row in rows:
            rps = f"{row['rps']:.0f}" if row["rps"] else "-"
            errors = row.get("errors", 0)
            print(f"{row['label']:<34}{row['p50']:>9.2f}{row['p99']:>9.2f}{rps:>8}{errors:>8}")
        warm = [r for r in rows if "paced, warm" in r["label"]]
        met = all(r["p99"] <= 15 for r in warm)
        print(
            f"\ntarget p99 <= 15 ms, {CLIENTS} clients paced to {RATE:.0f} req/s, warm cache: "
            f"{'met' if met else 'NOT met'}"
        )
        saturating = [r for r in rows if "saturating" in r["label"]]
        for r in saturating:  # Little's law: a closed loop of N clients waits N / throughput
            print(
                f"{r['label']}: {CLIENTS} / {r['rps']:.0f} req/s = "
                f"{CLIENTS / r['rps'] * 1000:.0f} ms expected per request"
            )
        print(
            f"cold page / warm page (1 signature vs cache hit: {cold_sign / warm_sign:.0f}x): "
            + ", ".join(
                f"{a['label'].split(',')[0]} p50 {a['p50'] / b['p50']:.1f}x"
                for a, b in zip(rows[3::4], rows[4::4], strict=True)
            )
        )
        return 0 if ok and not any(r.get("errors") for r in rows) else 1
    finally:
        if api is not None:
            api.stop()
        issuer.stop()
        if KEEP:
            cluster.stop()
        else:
            cluster.destroy()


if __name__ == "__main__":
    sys.exit(main())
