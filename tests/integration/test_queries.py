"""The seed's example queries, user creation and the pool, on a real PostgreSQL 15."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared import config, db
from shared.errors import Transient
from shared.queries import generated_images, jobs, sessions, users
from tests.integration import factories as make


def test_sessions_list_newest_activity_first_with_thumbnail_and_count(database):
    with db.transaction() as conn:
        owner = make.user(conn)
        older = make.session(conn, owner, "older")
        newer = make.session(conn, owner, "newer")
        make.session(conn, make.user(conn), "someone else's")
    time.sleep(0.01)
    with db.transaction() as conn:  # activity in the older session moves it to the top
        image = make.image(conn, make.job(conn, owner, older), 1)
    with db.transaction() as conn:
        listed = sessions.list_for_user(conn, user_id=owner["id"], limit=10)
    assert [s["title"] for s in listed] == ["older", "newer"]
    assert listed[0]["thumbnail_url"] == image["gcp_url"]
    assert listed[0]["generated_count"] == 1
    assert listed[1]["thumbnail_url"] is None and listed[1]["id"] == newer["id"]


def test_sessions_keyset_pages_cover_everything_once(database):
    with db.transaction() as conn:
        owner = make.user(conn)
        created = {make.session(conn, owner, f"s{i}")["id"] for i in range(7)}
    seen, after = [], None
    while True:
        with db.transaction() as conn:
            page = sessions.list_for_user(conn, user_id=owner["id"], limit=3, after=after)
        if not page:
            break
        seen += [s["id"] for s in page]
        after = (page[-1]["updated_at"], page[-1]["id"])
    assert len(seen) == 7 and set(seen) == created


def test_job_with_reference_urls_only_for_its_owner(database):
    with db.transaction() as conn:
        owner = make.user(conn)
        stranger = make.user(conn)
        refs = [make.reference(conn, owner) for _ in range(2)]
        foreign = make.reference(conn, stranger)
        job = make.job(conn, owner, make.session(conn, owner))
        linked = jobs.link_references(
            conn,
            job_id=job["id"],
            user_id=owner["id"],
            reference_ids=[r["id"] for r in [*refs, foreign]],
        )
        bare = make.job(conn, owner, None)
    assert linked == 2  # another user's reference is never linked
    with db.transaction() as conn:
        found = jobs.get_with_references(conn, job_id=job["id"], user_id=owner["id"])
        without = jobs.get_with_references(conn, job_id=bare["id"], user_id=owner["id"])
        hidden = jobs.get_with_references(conn, job_id=job["id"], user_id=stranger["id"])
    assert sorted(found["reference_image_urls"]) == sorted(r["gcp_url"] for r in refs)
    assert without["reference_image_urls"] == []
    assert hidden is None


def test_session_gallery_is_newest_job_first_then_by_index(database):
    with db.transaction() as conn:
        owner, session = make.owned_session(conn)
        first_job = make.job(conn, owner, session, number_of_shots=2)
    time.sleep(0.01)
    with db.transaction() as conn:
        second_job = make.job(conn, owner, session, number_of_shots=2)
        # rendered out of order, interleaved
        for job, index in [(second_job, 2), (first_job, 1), (second_job, 1), (first_job, 2)]:
            make.image(conn, job, index)
    with db.transaction() as conn:
        gallery = generated_images.gallery_page(
            conn, session_id=session["id"], user_id=owner["id"], limit=10
        )
        foreign = generated_images.gallery_page(
            conn, session_id=session["id"], user_id=make.user(conn)["id"], limit=10
        )
        tail = generated_images.gallery_page(
            conn,
            session_id=session["id"],
            user_id=owner["id"],
            limit=10,
            after=(second_job["created_at"], second_job["id"], 1),
        )
    order = [(g["generation_job_id"], g["generation_index"]) for g in gallery]
    assert order == [
        (second_job["id"], 1),
        (second_job["id"], 2),
        (first_job["id"], 1),
        (first_job["id"], 2),
    ]
    assert [(g["generation_job_id"], g["generation_index"]) for g in tail] == order[1:]
    assert foreign == []


def test_concurrent_first_calls_create_one_user(database):
    def sign_in(_):
        with db.transaction() as conn:
            return users.get_or_create(
                conn, auth_subject="same-subject", email=None, display_name=None
            )["id"]

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(sign_in, range(16)))
    assert len(ids) == 1


def test_pool_serves_many_threads_with_few_connections(database, monkeypatch):
    monkeypatch.setenv("DB_POOL_SIZE", "2")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
    config.settings.cache_clear()
    db.dispose()
    peak = 0
    lock = threading.Lock()

    def work(i):
        nonlocal peak
        with db.transaction() as conn:
            count = db.one(
                conn,
                "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE 'imagegen%'"
                " AND datname = current_database()",
            )["n"]
            with lock:
                peak = max(peak, count)
            make.user(conn, f"u{i}")

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(work, range(60)))
    with db.transaction() as conn:
        assert db.one(conn, "SELECT count(*) AS n FROM users")["n"] == 60
    assert 1 <= peak <= 2


def test_unreachable_database_is_transient(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres:x@127.0.0.1:9/imagegen")
    monkeypatch.setenv("DB_POOL_TIMEOUT_SECONDS", "1")
    config.settings.cache_clear()
    db.dispose()
    try:
        with pytest.raises(Transient) as caught, db.transaction() as conn:
            db.one(conn, "SELECT 1")
        assert caught.value.http_status == 503 and caught.value.retryable
    finally:
        db.dispose()
        config.settings.cache_clear()


def _backends() -> set[int]:
    """The server processes behind the pool's idle connections."""
    with db.transaction() as first, db.transaction() as second:
        return {db.one(c, "SELECT pg_backend_pid() AS pid")["pid"] for c in (first, second)}


def test_statement_timeout_is_transient_and_keeps_the_pool(database, monkeypatch):
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "100")
    config.settings.cache_clear()
    db.dispose()
    pooled = _backends()
    with pytest.raises(Transient), db.transaction() as conn:
        db.one(conn, "SELECT pg_sleep(2)")
    assert os.environ["DATABASE_URL"] == database
    # A cancelled statement (SQLSTATE 57014) leaves its connection usable: nothing reconnects.
    assert _backends() == pooled
