"""Measure the local stack: cold start (fresh state folder), warm start (down, then up) and
the memory of all its processes (RSS summed over every process of every service).

    .venv/bin/python -m bench.bench_stack

Runs in a throwaway STACK_DIR on the configured ports, so the stack of `make up` must be down.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.fixtures.processes import run_stack  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def stack(env: dict[str, str], *args: str) -> tuple[float, str]:
    """Run `python -m tools.stack ...` with `env` added; the seconds it took and its output."""
    began = time.monotonic()
    result = run_stack(*args, env=env, timeout=300)
    if result.returncode != 0 and args[0] == "up":
        raise SystemExit(f"up failed:\n{result.stdout}{result.stderr}")
    return time.monotonic() - began, result.stdout


def slowest(output: str) -> str:
    """The service that answered last, from up's `✓ name ... up (12.3s)` lines."""
    ready = re.findall(r"✓ (\S+)\s+\S+\s+up \(([\d.]+)s\)", output)
    name, seconds = max(ready, key=lambda item: float(item[1]))
    return f"{name} answered last, at {seconds}s"


def processes() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, pgid, rss bytes) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            rss = int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError):
            continue
        table[int(entry)] = (int(fields[1]), int(fields[2]), rss)
    return table


def memory(env: dict[str, str]) -> dict[str, int]:
    """RSS per service: its process group plus every descendant (PostgreSQL's children)."""
    rows = json.loads(stack(env, "status", "--json")[1])
    table = processes()
    usage = {}
    for row in rows:
        members = {pid for pid, (_, pgid, _) in table.items() if pgid == row["pid"]}
        grew = True
        while grew:
            children = {pid for pid, (ppid, _, _) in table.items() if ppid in members}
            grew = not children <= members
            members |= children
        usage[row["name"]] = sum(table[pid][2] for pid in members)
    return usage


def main() -> int:
    state = Path(tempfile.mkdtemp(prefix="imagegen-bench-stack-"))
    state.chmod(0o755)
    env = {"STACK_DIR": str(state)}
    try:
        cold, output = stack(env, "up")
        print(f"cold start: {cold:.1f}s ({slowest(output)})")
        usage = memory(env)
        stack(env, "down")
        warm, output = stack(env, "up")
        print(f"warm start: {warm:.1f}s ({slowest(output)})")
        for name, rss in sorted(usage.items(), key=lambda item: -item[1]):
            print(f"  {name:<16} {rss / 2**20:7.1f} MiB")
        print(f"memory: {sum(usage.values()) / 2**20:.0f} MiB RSS in total")
    finally:
        stack(env, "down")
        pg = state / "postgres"
        if pg.is_symlink():  # as root, the cluster may live under /tmp
            shutil.rmtree(pg.resolve(), ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
