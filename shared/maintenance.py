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


# Each task imports its module when it runs: one tick loads what one task needs.
def _reconcile_uploads() -> dict[str, Any]:
    from shared.uploads import reconcile

    return reconcile.task()


def _republish_deletions() -> dict[str, Any]:
    from shared import purge

    return purge.republish_pending()


def _sweep_jobs() -> dict[str, Any]:
    from shared.generation import sweeper

    return sweeper.sweep_jobs()


def _prune_usage() -> dict[str, Any]:
    from shared.limits import pruning

    return pruning.prune_usage()


TASKS: dict[str, Task] = {
    "prune_usage": _prune_usage,
    "reconcile_uploads": _reconcile_uploads,
    "republish_deletions": _republish_deletions,
    "sweep_jobs": _sweep_jobs,
}


def run(message: dict[str, Any]) -> dict[str, Any]:
    name = message.get("task")
    if name not in TASKS:
        raise InvalidInput(f"unknown maintenance task {name!r}", details={"known": sorted(TASKS)})
    summary = TASKS[name]()
    log.info(f"maintenance task {name} done", action="maintenance.done", task=name, **summary)
    return summary
