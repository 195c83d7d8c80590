"""Scheduled maintenance: Cloud Scheduler publishes `{"task": NAME}` to the maintenance topic.

Each task is a function of no arguments that returns a summary for the log; tasks are
idempotent, so a skipped or doubled tick does no harm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared import log
from shared.errors import InvalidInput

Task = Callable[[], dict[str, Any]]


def tasks() -> dict[str, Task]:
    """Every task by name (imported here so that one task's module does not load the others')."""
    from shared import purge
    from shared.generation import sweeper
    from shared.uploads import reconcile

    return {
        "reconcile_uploads": reconcile.task,
        "republish_deletions": purge.republish_pending,
        "sweep_jobs": sweeper.sweep_jobs,
    }


def run(message: dict[str, Any]) -> dict[str, Any]:
    name = message.get("task")
    known = tasks()
    if name not in known:
        raise InvalidInput(f"unknown maintenance task {name!r}", details={"known": sorted(known)})
    summary = known[name]()
    log.info(f"maintenance task {name} done", action="maintenance.done", task=name, **summary)
    return summary
