"""`down`, `status`, `logs`, `token` and `env`: everything but `up`."""

from __future__ import annotations

import json
import os
import time

from infra.manifest import Manifest
from tools.stack import issuer, keys, procs
from tools.stack.config import StackConfig
from tools.stack.services import build, cluster


def down(config: StackConfig, spec: Manifest, only: set[str] | None = None) -> int:
    """Stop what `up` started (functions first, PostgreSQL last); 1 if a port still answers."""
    services = [s for s in reversed(build(config, spec, "")) if not only or s.name in only]
    for s in services:
        if s.name == "postgres":
            pg = cluster(config)
            if (pg.data / "postmaster.pid").exists():
                pg.stop()
                print("  - postgres stopped (pg_ctl stop -m fast)")
            continue
        pid = procs.stop(config.pid_file(s.name))
        if pid is not None:
            print(f"  - {s.name:<16} stopped (pid {pid}, its process group)")
    deadline = time.monotonic() + 5
    answering = [s for s in services if procs.port_answers(s.port)]
    while answering and time.monotonic() < deadline:
        time.sleep(0.2)
        answering = [s for s in answering if procs.port_answers(s.port)]
    for s in answering:
        print(f"!! {s.name}: 127.0.0.1:{s.port} still answers (not started by this stack?)")
    return 1 if answering else 0


def service_status(config: StackConfig, spec: Manifest) -> list[dict[str, object]]:
    """Each service: name, port, our pid (or None), whether it answers."""
    rows: list[dict[str, object]] = []
    for s in build(config, spec, ""):
        if s.name == "postgres":
            pid_path = cluster(config).data / "postmaster.pid"
            first = pid_path.read_text().split("\n", 1)[0] if pid_path.exists() else ""
            pid = int(first) if first.isdigit() else None
        else:
            pid = procs.running_pid(config.pid_file(s.name))
        rows.append({"name": s.name, "port": s.port, "pid": pid, "up": s.answers()})
    return rows


def status(config: StackConfig, spec: Manifest, as_json: bool = False) -> int:
    rows = service_status(config, spec)
    if as_json:
        print(json.dumps(rows))
    else:
        for row in rows:
            pid = row["pid"] or "-"
            state = "up" if row["up"] else "DOWN"
            print(f"{row['name']:<16} 127.0.0.1:{row['port']:<6} pid {pid!s:<8} {state}")
    return 0 if all(row["up"] for row in rows) else 1


def logs(config: StackConfig, service: str | None, lines: int, follow: bool) -> int:
    """Print the last lines of each log (or one service's), or follow them with tail -F."""
    files = sorted(config.logs.glob("*.log"))
    if service:
        files = [f for f in files if f.stem == service]
        if not files:
            print(f"no log for {service!r} in {config.logs}")
            return 1
    if follow:
        os.execvp("tail", ["tail", "-n", str(lines), "-F", *map(str, files)])  # noqa: S606
    for path in files:
        print(f"==> {path} <==")
        text = path.read_text(errors="replace").splitlines()
        print("\n".join(text[-lines:]))
    return 0


def token(config: StackConfig, user: str) -> int:
    """Print a bearer token for `user` (the same key the running issuer serves)."""
    print(issuer.mint(keys.issuer_key(config.keys), user, config.project))
    return 0


def env(config: StackConfig) -> int:
    """Print .local/stack.env (KEY=value lines, for `set -a; . .local/stack.env`)."""
    if not config.env_file.exists():
        print(f"{config.env_file} does not exist yet: run `make up`")
        return 1
    print(config.env_file.read_text(), end="")
    return 0
