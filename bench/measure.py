"""Timing a step the benches repeat: each run's milliseconds, after warm-up runs that pay the
first-use costs (imports, connections, prepared statements, caches)."""

from __future__ import annotations

import time
from collections.abc import Callable


def timings_ms(action: Callable[[], object], runs: int, warm_up: int = 1) -> list[float]:
    for _ in range(warm_up):
        action()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return timings
