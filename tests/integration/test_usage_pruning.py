"""The prune_usage maintenance task on a real PostgreSQL: usage rows past what the limits count
go, the rest stay, and a registered upload whose ticket was pruned is still a duplicate."""

from __future__ import annotations

from typing import Any

from shared import db, maintenance, storage
from shared.limits import pruning
from shared.limits import service as limits
from shared.limits.service import WINDOW_SECONDS
from shared.uploads import registration
from tests.integration import uploads as base
from tools.fixtures import images as make


def _age(table: str, column: str, seconds: int) -> None:
    with db.transaction() as conn:
        db.execute(
            conn, f"UPDATE {table} SET {column} = now() - make_interval(secs => :s)", {"s": seconds}
        )


def _count(table: str) -> int:
    with db.transaction() as conn:
        return db.one(conn, f"SELECT count(*) AS n FROM {table}")["n"]  # type: ignore[index]


def _request_images(user: dict[str, Any], images: int) -> None:
    with db.transaction() as conn:
        limits.admit_job(conn, user["id"], images)


def test_only_rows_the_limits_no_longer_count_are_pruned(owner: dict[str, Any]) -> None:
    _request_images(owner, 3)
    _age("images_requested", "requested_at", WINDOW_SECONDS + 60)
    _request_images(owner, 2)  # inside the window
    with db.transaction() as conn:
        for n, age_days in ((1, 1), (2, pruning.TICKET_DAYS - 1), (3, pruning.TICKET_DAYS + 1)):
            limits.admit_upload(conn, owner["id"], f"gs://b/uploads/{owner['id']}/{n}.jpg", 10)
            db.execute(
                conn,
                "UPDATE upload_tickets SET issued_at = now() - make_interval(days => :d)"
                " WHERE gcp_bucket_path LIKE :p",
                {"d": age_days, "p": f"%/{n}.jpg"},
            )

    first = maintenance.run({"task": "prune_usage"})
    again = maintenance.run({"task": "prune_usage"})

    assert first == {"images_requested": 1, "upload_tickets": 1}
    assert again == {"images_requested": 0, "upload_tickets": 0}
    with db.transaction() as conn:
        usage = limits.usage(conn, owner["id"])
    assert usage["images_per_day"].used == 2
    assert _count("upload_tickets") == 2


def test_a_registered_upload_stays_a_duplicate_once_its_ticket_is_pruned(
    bucket: str, owner: dict[str, Any]
) -> None:
    obj = base.put(base.upload_name(owner), make.jpeg())
    assert registration.register_object(obj) == "registered"
    _age("upload_tickets", "issued_at", (pruning.TICKET_DAYS + 1) * 86400)
    assert pruning.prune_usage()["upload_tickets"] == 1

    assert registration.register_object(obj) == "duplicate"  # a late redelivery
    assert not base.exists(storage.QUARANTINE_PREFIX + obj.name)
