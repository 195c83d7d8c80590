"""The object-deletion outbox: chunking, generations, and claims that never hand a row to two
republishers."""

from __future__ import annotations

import threading

from shared import db, purge
from shared.queries import object_deletions


def _names(n: int) -> list[str]:
    return [f"generated/job/{i}_x.jpg" for i in range(n)]


def test_objects_are_chunked_into_rows_with_their_generations(database):
    stored = [(name, i or None) for i, name in enumerate(_names(1200))]
    with db.transaction() as conn:
        entries = purge.enqueue(conn, stored, reason="session_deleted")
        assert purge.enqueue(conn, [], reason="nothing") == []
    assert [len(e["object_names"]) for e in entries] == [500, 500, 200]
    assert [n for e in entries for n in e["object_names"]] == _names(1200)
    assert [g for e in entries for g in e["object_generations"]] == [g for _, g in stored]


def test_only_rows_past_their_hold_are_claimed_and_each_once(database):
    with db.transaction() as conn:
        # its writer is still publishing
        held = purge.enqueue(conn, [(_names(1)[0], 1)], reason="fresh")
        for _ in range(4):
            object_deletions.add(
                conn,
                object_names=_names(2),
                object_generations=[None, None],
                reason="stale",
                hold_seconds=-1,
            )
    barrier = threading.Barrier(2)
    claimed: list[list[dict]] = []

    def claim() -> None:
        with db.transaction() as conn:
            barrier.wait(timeout=10)
            claimed.append(object_deletions.claim_due(conn, limit=3, hold_seconds=60))

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    ids = [row["id"] for rows in claimed for row in rows]
    assert len(ids) == 4 and len(set(ids)) == 4  # SKIP LOCKED: split, never shared
    assert held[0]["id"] not in ids
    assert all(row["attempts"] == 1 for rows in claimed for row in rows)
    with db.transaction() as conn:
        assert object_deletions.claim_due(conn, limit=10, hold_seconds=60) == []  # held again


def test_objects_of_images_include_thumbnails_once_with_their_generations(database):
    rows = [
        {
            "gcp_bucket_path": "video-gen-image-bucket/generated/j/1_t.jpg",
            "thumbnail_url": "https://storage.googleapis.com/video-gen-image-bucket/thumbnails/generated/j/1_t.jpg",
            "object_generation": 7,
            "thumbnail_generation": 8,
        },
        {
            "gcp_bucket_path": "video-gen-image-bucket/generated/j/1_t.jpg",
            "thumbnail_url": None,
            "object_generation": 7,
        },
    ]
    assert purge.objects(rows) == [
        ("generated/j/1_t.jpg", 7),
        ("thumbnails/generated/j/1_t.jpg", 8),
    ]
