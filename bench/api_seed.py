"""The data of bench/bench_api.py: 100k users, 1M sessions, 2.5M jobs and 10M images at
scale 1, loaded inside PostgreSQL with generate_series from two connections at once, triggers
and foreign-key checks off, the secondary indexes built afterwards by the migration."""

from __future__ import annotations

import threading
import time
from typing import Any

import pg8000.native

from tools.pgcluster import connect

TABLES = ("users", "sessions", "generation_jobs", "generated_images")

# Session s belongs to user s % U, has 2 + s % 2 jobs of 4 shots (10 images on average), and its
# thumbnail is its first job's first image, as the triggers would have set it.
_SEED = {
    "users": """
INSERT INTO users (id, auth_subject, email, display_name, created_at, updated_at)
SELECT md5('u' || u)::uuid, 'bench-' || u, 'bench-' || u || '@example.com', 'bench ' || u,
       now() - interval '400 days', now() - interval '400 days'
  FROM generate_series(:lo, :hi - 1) u""",
    "sessions": """
INSERT INTO sessions (id, user_id, title, thumbnail_url, thumbnail_image_id, generated_count,
                      created_at, updated_at)
SELECT md5('s' || s)::uuid, md5('u' || (s % :users))::uuid, 'Session ' || s,
       'https://storage.googleapis.com/video-gen-image-bucket/generated/'
           || md5('j' || s || '-0')::uuid || '/1_20261130T000000Z.jpg',
       md5('i' || s || '-0-1')::uuid, (2 + s % 2) * 4, t, t + random() * interval '30 days'
  FROM generate_series(:lo, :hi - 1) s,
       LATERAL (SELECT now() - interval '365 days' + random() * interval '330 days' AS t) x""",
    "generation_jobs": """
INSERT INTO generation_jobs (id, user_id, session_id, prompt, status, number_of_shots,
                             aspect_ratio, generation_method, started_at, completed_at,
                             created_at, updated_at)
SELECT md5('j' || s || '-' || j)::uuid, md5('u' || (s % :users))::uuid, md5('s' || s)::uuid,
       'a lighthouse at dusk, take ' || j, 'completed', 4, '16:9', 'fallback', t, t, t, t
  FROM generate_series(:lo, :hi - 1) s, generate_series(0, 1 + s % 2) j,
       LATERAL (SELECT now() - interval '400 days' + s * interval '1 second'
                       + j * interval '1 hour' AS t) x""",
    "generated_images": """
INSERT INTO generated_images (id, generation_job_id, user_id, session_id, gcp_bucket_path,
                              gcp_url, thumbnail_url, file_name, file_size, mime_type, width,
                              height, prompt_used, generation_index, generation_method,
                              created_at)
SELECT md5('i' || s || '-' || j || '-' || i)::uuid, job, md5('u' || (s % :users))::uuid,
       md5('s' || s)::uuid, 'video-gen-image-bucket/' || name,
       'https://storage.googleapis.com/video-gen-image-bucket/' || name,
       'https://storage.googleapis.com/video-gen-image-bucket/thumbnails/' || name,
       i || '_20261130T000000Z.jpg', 250000, 'image/jpeg', 1344, 768, 'a lighthouse at dusk',
       i, 'fallback', now() - interval '400 days' + s * interval '1 second' + j * interval '1 hour'
  FROM generate_series(:lo, :hi - 1) s, generate_series(0, 1 + s % 2) j, generate_series(1, 4) i,
       LATERAL (SELECT md5('j' || s || '-' || j)::uuid AS job) k,
       LATERAL (SELECT 'generated/' || job || '/' || i || '_20261130T000000Z.jpg' AS name) n""",
}

_SECONDARY_INDEXES = """
SELECT i.indexrelid::regclass::text AS name
  FROM pg_index i
 WHERE i.indrelid = ANY(CAST(:tables AS regclass[]))
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"""


def _tune(cluster: Any) -> None:
    admin = connect(cluster.url("postgres"), timeout=3600)
    for setting, value in [
        ("shared_buffers", "4GB"),
        ("maintenance_work_mem", "2GB"),
        ("max_wal_size", "16GB"),
        ("checkpoint_timeout", "30min"),
        ("max_parallel_maintenance_workers", "2"),
        ("random_page_cost", "1.1"),
    ]:
        admin.run(f"ALTER SYSTEM SET {setting} = '{value}'")
    admin.close()
    cluster.stop()
    cluster.start()


def _parallel(url: str, sql: str, total: int, users: int, workers: int = 2) -> None:
    """Insert ranges [lo, hi) of the series from `workers` connections at once."""
    step = max(1, -(-total // (workers * 8)))
    ranges = [(lo, min(lo + step, total)) for lo in range(0, total, step)]
    lock = threading.Lock()

    def work() -> None:
        conn = connect(url, timeout=3600)
        conn.run("SET session_replication_role = replica")  # no triggers, no FK checks
        while True:
            with lock:
                if not ranges:
                    break
                lo, hi = ranges.pop(0)
            conn.run(sql, lo=lo, hi=hi, users=users)
        conn.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _migrate(conn: pg8000.native.Connection) -> None:
    """The schema files, as shared.migrate runs them, on a connection without the app's
    statement and socket timeouts (building an index on 10M rows takes minutes)."""
    from shared import migrate

    for name in migrate.SCHEMA_FILES:
        conn.execute_simple((migrate.SCHEMA_DIR / name).read_text(encoding="utf-8"))


def seed(cluster: Any, url: str, scale: float) -> dict[str, Any]:
    """Load the data (or reuse a load of the same scale); returns counts, time and samples."""
    n_users, n_sessions = max(10, int(100_000 * scale)), max(100, int(1_000_000 * scale))
    admin = connect(cluster.url("postgres"), timeout=3600)
    exists = admin.run("SELECT 1 FROM pg_database WHERE datname = 'bench'")
    if not exists:
        admin.run("CREATE DATABASE bench")
    admin.close()
    conn = connect(url, timeout=3600)
    conn.run("CREATE TABLE IF NOT EXISTS bench_meta (scale float8, seconds float8)")
    found = conn.run("SELECT scale, seconds FROM bench_meta")
    reused = bool(found) and found[0][0] == scale
    if not reused:
        conn.close()
        _tune(cluster)
        conn = connect(url, timeout=3600)
        started = time.monotonic()
        conn.run("DROP TABLE IF EXISTS " + ", ".join(reversed(TABLES)) + " CASCADE")
        _migrate(conn)
        for (name,) in conn.run(_SECONDARY_INDEXES, tables=list(TABLES)):
            conn.run(f"DROP INDEX {name}")
        for table in TABLES:
            total = n_users if table == "users" else n_sessions
            t0 = time.monotonic()
            _parallel(url, _SEED[table], total, n_users)
            print(f"  {table}: {time.monotonic() - t0:.0f} s", flush=True)
        t0 = time.monotonic()
        _migrate(conn)  # builds the secondary indexes again (CREATE INDEX IF NOT EXISTS)
        print(f"  secondary indexes: {time.monotonic() - t0:.0f} s", flush=True)
        t0 = time.monotonic()
        conn.run("VACUUM (ANALYZE)")
        print(f"  vacuum analyze: {time.monotonic() - t0:.0f} s", flush=True)
        conn.run("DELETE FROM bench_meta")
        conn.run("INSERT INTO bench_meta VALUES (:s, :t)", s=scale, t=time.monotonic() - started)
    seconds = conn.run("SELECT seconds FROM bench_meta")[0][0]
    counts = {
        t: conn.run(f"SELECT reltuples::bigint FROM pg_class WHERE relname = '{t}'")[0][0]
        for t in TABLES
    }
    users = conn.run("SELECT id::text, auth_subject FROM users ORDER BY md5(id::text) LIMIT 2000")
    sessions = conn.run(
        "SELECT s.user_id::text, s.id::text FROM sessions s"
        " WHERE s.user_id = ANY(CAST(:ids AS uuid[]))",
        ids=[u[0] for u in users],
    )
    conn.close()
    return {
        "counts": counts,
        "seconds": seconds,
        "reused": reused,
        "users": [(u[0], u[1]) for u in users],
        "sessions": [(s[0], s[1]) for s in sessions],
    }
