"""Background processes of the stack: start detached, remember, recognise, stop.

A pid file holds the pid and the kernel's start time of the process, so a pid reused by an
unrelated process after a reboot or a crash is never mistaken for ours. Each process leads its
own process group (a new session), and stopping it signals the whole group: gunicorn's worker
and a wrapper's java child go with their parent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from tools.pgcluster import port_answers

__all__ = ["group_alive", "http_answers", "port_answers", "running_pid", "spawn", "stop"]


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    fields = _stat(pid)
    return fields[19] if fields else None


def spawn(
    pid_file: Path, log_file: Path, cmd: Sequence[str], env: Mapping[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    """Start `cmd` in its own session, output appended to `log_file`; record it in `pid_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record = {"pid": proc.pid, "start": _start_time(proc.pid), "cmd": list(cmd)}
    pid_file.write_text(json.dumps(record) + "\n")
    return proc


def running_pid(pid_file: Path) -> int | None:
    """The recorded pid if that very process still runs (not a zombie), else None."""
    try:
        record = json.loads(pid_file.read_text())
    except (OSError, ValueError):
        return None
    pid = int(record["pid"])
    fields = _stat(pid)
    if not fields or fields[19] != record.get("start") or fields[0] == "Z":
        return None
    return pid


def _stat(pid: int | str) -> list[str] | None:
    """Fields after the command name in /proc/<pid>/stat: [state, ppid, pgrp, ...]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def group_alive(pgid: int) -> bool:
    """True while a process of the group runs (zombies waiting for their reaper do not count)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields and fields[2] == str(pgid) and fields[0] != "Z":
                return True
    return False


def stop(pid_file: Path, timeout: float = 8.0) -> int | None:
    """Stop the recorded process and its group (TERM, then KILL); return the pid it had."""
    pid = running_pid(pid_file)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while group_alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if group_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while group_alive(pid) and time.monotonic() < deadline + 3:
                _reap(pid)
                time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    return pid


def _reap(pid: int) -> None:
    """Collect our own child's exit status (when `up` and `down` share a process, as in tests)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def http_answers(url: str, timeout: float = 1.0) -> bool:
    """True when an HTTP server answers the URL with any status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - local http URL
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
