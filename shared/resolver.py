"""Name lookups with a deadline, for the hosts users name (shared/outbound.py).

`getaddrinfo` blocks until the system's resolver gives up, which a resolver that hangs makes
tens of seconds, and nothing interrupts it. So each lookup runs on a thread of its own and the
caller waits for it at most `LOOKUP_SECONDS`, then gets a `Transient` (503 with Retry-After in
the api; a retry for an event function). A lookup that overran finishes on its thread, with no
one waiting for it. At most `MAX_LOOKUPS` run at once in a process, so a resolver that hangs
for every name holds that many threads, not one per request: past them, a caller waits for a
free one within the same deadline.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from shared.errors import Transient

Resolver = Callable[..., list[tuple[Any, ...]]]
LOOKUP_SECONDS = 3.0
MAX_LOOKUPS = 16

_slots = threading.BoundedSemaphore(MAX_LOOKUPS)


class LookupTimeout(Transient):
    code = "dns_timeout"


def lookup(
    host: str, port: int, *, seconds: float | None = None, resolver: Resolver | None = None
) -> list[tuple[Any, ...]]:
    """`getaddrinfo(host, port, type=SOCK_STREAM)` (or `resolver`'s) within `seconds` (default
    `LOOKUP_SECONDS`): its answers or its error; LookupTimeout when it takes longer."""
    limit = LOOKUP_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + limit
    resolve = resolver or socket.getaddrinfo  # read at call time: a test may stand in for it
    slots = _slots  # the thread gives back the room it took, whatever `_slots` is by then
    if not slots.acquire(timeout=limit):
        raise LookupTimeout(f"resolving {host} took longer than {limit:g} s; try again")
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["answers"] = resolve(host, port, type=socket.SOCK_STREAM)
        except BaseException as exc:  # handed to the caller, whatever it is
            outcome["error"] = exc
        finally:
            slots.release()
            done.set()

    threading.Thread(target=run, name=f"lookup {host}", daemon=True).start()
    if not done.wait(max(0.0, deadline - time.monotonic())):
        raise LookupTimeout(f"resolving {host} took longer than {limit:g} s; try again")
    if "error" in outcome:
        raise outcome["error"]
    answers: list[tuple[Any, ...]] = outcome["answers"]
    return answers
