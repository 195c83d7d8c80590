"""Per-user limits: a user's quotas (the configured defaults, overridden by `user_limits`), what
counts against them, and the conditional inserts that admit a job's images or an upload.

The inserts count and write in one statement, and run after `lock_user` in the same
transaction: concurrent requests of one user take turns, and each statement's snapshot, taken
after the lock was granted, sees what the previous one committed. (Counting in the statement
that waits for the lock would use a snapshot from before the wait.)
"""

from __future__ import annotations

from typing import Any

from shared.db import Connection, execute, one

_SINCE = "now() - make_interval(secs => :window_seconds)"
_ACTIVE = """(SELECT count(*) FROM generation_jobs j
               WHERE j.user_id = u.id AND j.status IN ('pending', 'processing'))"""
_IMAGES = f"""(SELECT COALESCE(sum(r.images), 0) FROM images_requested r
               WHERE r.user_id = u.id AND r.requested_at > {_SINCE})"""
_UPLOADS = f"""(SELECT count(*) FROM upload_tickets t
                WHERE t.user_id = u.id AND t.issued_at > {_SINCE})"""
_UPLOAD_BYTES = f"""(SELECT CAST(COALESCE(sum(t.file_size), 0) AS bigint) FROM upload_tickets t
                     WHERE t.user_id = u.id AND t.issued_at > {_SINCE})"""
_USER = """
  FROM users u LEFT JOIN user_limits l ON l.user_id = u.id
 WHERE u.id = :user_id"""


def _reset(table: str, column: str) -> str:
    """Seconds until the oldest row of the user's window leaves it (NULL: the window is empty)."""
    return f"""(SELECT CAST(ceil(EXTRACT(EPOCH FROM
                    min(x.{column}) + make_interval(secs => :window_seconds) - now())) AS integer)
                  FROM {table} x WHERE x.user_id = u.id AND x.{column} > {_SINCE})"""


_LOCK_USER = "SELECT id FROM users WHERE id = :user_id FOR NO KEY UPDATE"

# A job's images, admitted while the user has a free active-job slot and the images fit the
# day's quota (the job itself is recorded after this, in the same transaction).
_ADMIT_IMAGES = f"""
INSERT INTO images_requested (user_id, images)
SELECT u.id, CAST(:images AS smallint) {_USER}
   AND {_ACTIVE} < COALESCE(l.active_jobs, :active_jobs)
   AND {_IMAGES} + :images <= COALESCE(l.images_per_day, :images_per_day)
RETURNING id
"""

# An upload ticket, admitted while the day's count and bytes allow it.
_ADMIT_UPLOAD = f"""
INSERT INTO upload_tickets (gcp_bucket_path, user_id, file_size)
SELECT :gcp_bucket_path, u.id, :file_size {_USER}
   AND {_UPLOADS} < COALESCE(l.uploads_per_day, :uploads_per_day)
   AND {_UPLOAD_BYTES} + :file_size <= COALESCE(l.upload_bytes_per_day, :upload_bytes_per_day)
RETURNING gcp_bucket_path
"""

_USAGE = f"""
SELECT COALESCE(l.active_jobs, :active_jobs) AS active_jobs_quota,
       {_ACTIVE} AS active_jobs_used,
       COALESCE(l.images_per_day, :images_per_day) AS images_per_day_quota,
       {_IMAGES} AS images_per_day_used,
       {_reset("images_requested", "requested_at")} AS images_per_day_reset,
       COALESCE(l.uploads_per_day, :uploads_per_day) AS uploads_per_day_quota,
       {_UPLOADS} AS uploads_per_day_used,
       COALESCE(l.upload_bytes_per_day, :upload_bytes_per_day) AS upload_bytes_per_day_quota,
       {_UPLOAD_BYTES} AS upload_bytes_per_day_used,
       {_reset("upload_tickets", "issued_at")} AS uploads_reset
{_USER}
"""

_TICKET = "SELECT * FROM upload_tickets WHERE gcp_bucket_path = :gcp_bucket_path"


def lock_user(conn: Connection, user_id: Any) -> bool:
    """Lock the user's row until the transaction ends; False if there is no such user."""
    return one(conn, _LOCK_USER, {"user_id": user_id}) is not None


def admit_images(
    conn: Connection, *, user_id: Any, images: int, defaults: dict[str, int], window_seconds: int
) -> bool:
    """Count a job's images if every job limit allows it; False (nothing written) otherwise."""
    params = {**defaults, "user_id": user_id, "images": images, "window_seconds": window_seconds}
    return one(conn, _ADMIT_IMAGES, params) is not None


def admit_upload(
    conn: Connection,
    *,
    user_id: Any,
    gcp_bucket_path: str,
    file_size: int,
    defaults: dict[str, int],
    window_seconds: int,
) -> bool:
    """Issue the upload ticket if every upload limit allows it; False otherwise."""
    params = {**defaults, "user_id": user_id, "window_seconds": window_seconds}
    params.update(gcp_bucket_path=gcp_bucket_path, file_size=file_size)
    return one(conn, _ADMIT_UPLOAD, params) is not None


def usage(
    conn: Connection, *, user_id: Any, defaults: dict[str, int], window_seconds: int
) -> dict[str, Any] | None:
    """Each limit's `<name>_quota` and `<name>_used`, and the windows' seconds to reset."""
    return one(conn, _USAGE, {**defaults, "user_id": user_id, "window_seconds": window_seconds})


def ticket(conn: Connection, gcp_bucket_path: str) -> dict[str, Any] | None:
    return one(conn, _TICKET, {"gcp_bucket_path": gcp_bucket_path})


# What the limits no longer count (the prune_usage maintenance task): one statement each.
_PRUNE_IMAGES = """
DELETE FROM images_requested WHERE requested_at < now() - make_interval(secs => :older_than)
"""
_PRUNE_TICKETS = """
DELETE FROM upload_tickets WHERE issued_at < now() - make_interval(secs => :older_than)
"""


def prune_images_requested(conn: Connection, older_than_seconds: int) -> int:
    return execute(conn, _PRUNE_IMAGES, {"older_than": older_than_seconds})


def prune_upload_tickets(conn: Connection, older_than_seconds: int) -> int:
    return execute(conn, _PRUNE_TICKETS, {"older_than": older_than_seconds})
