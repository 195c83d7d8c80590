"""The limits service, which the generation and upload capabilities call.

`admit_job` and `admit_upload` run in the caller's transaction: they lock the user's row, then
one conditional INSERT counts and records (shared/queries/limits.py), so 20 concurrent requests
with one slot left admit exactly one. A refusal raises RateLimited (429) naming the limit, with
Retry-After and the IETF RateLimit-Policy / RateLimit headers; `headers` gives the same headers
for a successful answer. Defaults come from configuration (LIMIT_*), a `user_limits` row
overrides them for one user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from shared import config
from shared.db import Connection
from shared.errors import NotFound, RateLimited
from shared.queries import limits
from shared.web.headers import Header

WINDOW_SECONDS = 24 * 3600
# A job takes about a minute: a client at its active-job limit asks again this much later.
ACTIVE_JOBS_RETRY_SECONDS = 15
JOBS = ("active_jobs", "images_per_day")
UPLOADS = ("uploads_per_day", "upload_bytes_per_day")
_WHAT = {
    "active_jobs": "jobs pending or processing at once",
    "images_per_day": "images asked for per 24 hours",
    "uploads_per_day": "uploads per 24 hours",
    "upload_bytes_per_day": "bytes of uploads per 24 hours",
}
_UNITS = {"active_jobs": "concurrent-requests", "upload_bytes_per_day": "content-bytes"}
# Sent by every route that counts against a limit (draft-ietf-httpapi-ratelimit-headers).
RATE_LIMIT_HEADERS = (
    Header(
        "RateLimit-Policy",
        'The limits the route counts against: `"<name>";q=<quota>[;qu=<unit>][;w=<window s>]`.',
        max_length=256,
    ),
    Header(
        "RateLimit",
        'What is left of each: `"<name>";r=<remaining>[;t=<s until the oldest count leaves>]`.',
        max_length=256,
    ),
)


@dataclasses.dataclass(frozen=True)
class Limit:
    """One limit of one user: its quota, what counts against it now, and its window."""

    quota: int
    used: int
    window_seconds: int | None  # None: a count of things at once
    reset_seconds: int | None  # until the oldest counted item leaves the window

    @property
    def remaining(self) -> int:
        return max(0, self.quota - self.used)


def usage(conn: Connection, user_id: Any) -> dict[str, Limit]:
    """Every limit of the user, by name."""
    row = limits.usage(conn, user_id=user_id, defaults=_defaults(), window_seconds=WINDOW_SECONDS)
    if row is None:
        raise NotFound("the user no longer exists")

    def windowed(name: str, reset: str) -> Limit:
        return Limit(row[f"{name}_quota"], row[f"{name}_used"], WINDOW_SECONDS, row[reset])

    return {
        "active_jobs": Limit(row["active_jobs_quota"], row["active_jobs_used"], None, None),
        "images_per_day": windowed("images_per_day", "images_per_day_reset"),
        "uploads_per_day": windowed("uploads_per_day", "uploads_reset"),
        "upload_bytes_per_day": windowed("upload_bytes_per_day", "uploads_reset"),
    }


def headers(conn: Connection, user_id: Any, names: tuple[str, ...]) -> dict[str, str]:
    """RateLimit-Policy and RateLimit for the named limits, as they stand in this transaction."""
    return _headers(usage(conn, user_id), names)


def admit_job(conn: Connection, user_id: Any, images: int) -> None:
    """Count a job asking for `images` images (a new job, or a retried job's missing shots),
    or raise RateLimited; record the job afterwards in the same transaction."""
    _admit(conn, user_id, limits.admit_images, JOBS, images, images=images)


def admit_upload(conn: Connection, user_id: Any, gcp_bucket_path: str, file_size: int) -> None:
    """Issue the ticket that lets the user upload `file_size` bytes as this object, or raise
    RateLimited."""
    params = {"gcp_bucket_path": gcp_bucket_path, "file_size": file_size}
    _admit(conn, user_id, limits.admit_upload, UPLOADS, file_size, **params)


def _admit(
    conn: Connection,
    user_id: Any,
    count: Callable[..., bool],
    names: tuple[str, str],
    amount: int,
    **params: Any,
) -> None:
    """Lock the user, then count one more item of `amount` with the `count` statement; when it
    is refused, RateLimited naming the limit reached: `names` are the number of items, then
    their amount."""
    _lock(conn, user_id)
    if count(conn, user_id=user_id, defaults=_defaults(), window_seconds=WINDOW_SECONDS, **params):
        return
    current = usage(conn, user_id)
    items, total = names
    if current[items].remaining == 0:
        raise _refused(current, items, names, requested=1)
    raise _refused(current, total, names, requested=amount)


def ticket(conn: Connection, gcp_bucket_path: str) -> dict[str, Any] | None:
    """The upload ticket issued for this object, if any."""
    return limits.ticket(conn, gcp_bucket_path)


def _defaults() -> dict[str, int]:
    return dataclasses.asdict(config.settings().limits)


def _lock(conn: Connection, user_id: Any) -> None:
    if not limits.lock_user(conn, user_id):
        raise NotFound("the user no longer exists")


def _headers(current: dict[str, Limit], names: tuple[str, ...]) -> dict[str, str]:
    policies, states = [], []
    for name in names:
        limit = current[name]
        policy = [f'"{name}"', f"q={limit.quota}"]
        if name in _UNITS:
            policy.append(f'qu="{_UNITS[name]}"')
        if limit.window_seconds:
            policy.append(f"w={limit.window_seconds}")
        state = [f'"{name}"', f"r={limit.remaining}"]
        if limit.reset_seconds is not None:
            state.append(f"t={max(0, limit.reset_seconds)}")
        policies.append(";".join(policy))
        states.append(";".join(state))
    return {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(states)}


def _refused(
    current: dict[str, Limit], name: str, names: tuple[str, ...], requested: int
) -> RateLimited:
    limit = current[name]
    if limit.window_seconds is None:
        wait = ACTIVE_JOBS_RETRY_SECONDS
    else:
        wait = limit.reset_seconds if limit.reset_seconds is not None else limit.window_seconds
    return RateLimited(
        f"Limit reached: {name} (at most {limit.quota} {_WHAT[name]}).",
        retry_after=max(1, wait),
        headers=_headers(current, names),
        details={
            "limit": name,
            "quota": limit.quota,
            "used": limit.used,
            "requested": requested,
            "window_seconds": limit.window_seconds,
        },
    )
