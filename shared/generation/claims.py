"""Claims on a job's plan or on one of its shots, as the at-least-once recipe wants them.

A claim is a lease in `generation_jobs.leases` under a key ("plan" or the shot index) with a
random token, taken by a compare-and-set in shared/queries/job_runs.py. While the work runs a
heartbeat renews it every third of RENDER_LEASE_SECONDS, so a live holder keeps it however
long a model call takes, and a killed one loses it that soon after its last beat. A failure
releases it so the redelivery can claim at once. A shot's claim may hold a model slot under the
same token (shared/generation/model_slots.py): the heartbeat renews it and a release ends it.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from shared import config, db, log
from shared.errors import AppError, Transient
from shared.queries import job_runs, model_calls


def new_token() -> str:
    return uuid.uuid4().hex


def lease_seconds() -> float:
    return float(config.settings().render_lease_seconds)


@contextlib.contextmanager
def held(job_id: Any, key: str | int, token: str) -> Iterator[None]:
    """Keep the claim alive while the block runs; release it if the block raises."""
    seconds = lease_seconds()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(seconds / 3):
            try:
                with db.transaction() as conn:
                    kept = job_runs.renew(
                        conn, job_id=job_id, key=key, token=token, seconds=seconds
                    )
                    model_calls.renew(conn, token=token, seconds=seconds)
            except AppError as error:
                log.warning(f"heartbeat failed: {error.message}", action="generation.heartbeat")
                continue
            if not kept:
                return  # released, finished or taken over: nothing left to keep alive

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(beat,), daemon=True, name=f"lease-{key}")
    thread.start()
    try:
        yield
    except BaseException:
        release(job_id, key, token)
        raise
    finally:
        stop.set()
        thread.join(timeout=5)


def release(job_id: Any, key: str | int, token: str) -> None:
    """Give the claim up now, and its model slot (best effort: if this fails too, the leases
    lapse by themselves)."""
    try:
        with db.transaction() as conn:
            job_runs.release(conn, job_id=job_id, key=key, token=token)
            model_calls.end(conn, token)
    except AppError as error:
        log.warning(f"claim not released: {error.message}", action="generation.release_failed")


def busy(what: str) -> Transient:
    """Another delivery holds the claim: retried later, when it has finished or its lease lapsed."""
    return Transient(f"{what} is claimed by another delivery; retry later", code="claimed")
