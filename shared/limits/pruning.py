"""The `prune_usage` maintenance task: drop the usage rows the limits no longer count.

`images_requested` rows count for one window (a day) and nothing reads them after it.
`upload_tickets` rows count for the same window, and an unregistered object needs its ticket
until its finalize event or the daily reconcile registers it; a registered one never asks again
(a duplicate event finds its row first). So tickets stay TICKET_DAYS, long past Eventarc's
24-hour retries and several reconciles; an object first seen after that is quarantined as
`no_ticket`, as any object that was never allowed.
"""

from __future__ import annotations

from typing import Any

from shared import db
from shared.limits.service import WINDOW_SECONDS
from shared.queries import limits

TICKET_DAYS = 7


def prune_usage() -> dict[str, Any]:
    """Delete images_requested rows past the window and tickets past TICKET_DAYS (idempotent)."""
    with db.transaction() as conn:
        images = limits.prune_images_requested(conn, older_than_seconds=WINDOW_SECONDS)
        tickets = limits.prune_upload_tickets(conn, older_than_seconds=TICKET_DAYS * 86400)
    return {"images_requested": images, "upload_tickets": tickets}
