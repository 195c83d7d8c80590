"""`up`: start what is not running, wait until everything answers, wire it, write stack.env.

Idempotent and healing: a service counts as running when its port (and HTTP probe) answers,
whatever pid files say; everything else starts, in parallel. Pub/Sub topics and subscriptions
are (re)created and the database migrated on every run, as both are idempotent.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from subprocess import Popen

from infra.manifest import ROOT, Manifest
from shared.config import firebase_issuer
from tools.stack import emulator, gcs, keys, procs, pubsub
from tools.stack.config import DB_NAME, StackConfig
from tools.stack.services import Service, build, cluster


def stack_env(config: StackConfig, spec: Manifest, db_url: str) -> dict[str, str]:
    """What clients need to reach the stack (written to .local/stack.env)."""
    env = {
        "API_URL": config.api_url(spec),
        "PUBSUB_EMULATOR_HOST": config.pubsub_host,
        "STORAGE_EMULATOR_HOST": config.storage_host,
        "DATABASE_URL": db_url,
        "BUCKET_NAME": config.bucket,
        "GCP_PROJECT": config.project,
        "AUTH_ISSUER": firebase_issuer(config.project),
        "AUTH_AUDIENCE": config.project,
        "AUTH_CERTS_URL": config.certs_url,
        "TOKEN_ISSUER_URL": config.issuer_url,
        "SIGNING_CREDENTIALS_FILE": str(config.signing_credentials),
        "RELAY_URL": config.relay_url,
        "CONSOLE_URL": config.console_url,
        "STACK_DIR": str(config.state),
    }
    for f in spec.functions:
        key = "FUNCTION_URL_" + f.name.upper().replace("-", "_")
        env[key] = config.function_url(f)
    return env


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in text)


class _Postgres(threading.Thread):
    """Starts the cluster (pg_ctl start -w blocks) while the rest boots."""

    def __init__(self, config: StackConfig) -> None:
        super().__init__(daemon=True)
        self.config = config
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            cluster(self.config).start()
        except Exception as exc:  # reported by `up`, with the log
            self.error = exc


def _migrate(db_url: str, log: Path) -> None:
    """Apply the schema (idempotent) with shared.migrate; its log lines go to `log`."""
    os.environ["DATABASE_URL"] = db_url
    from shared import config, db, migrate

    config.settings.cache_clear()
    with log.open("a") as out, contextlib.redirect_stdout(out):
        migrate.migrate()
    db.dispose()


def _prepare(config: StackConfig, spec: Manifest) -> str:
    """Folders, keys and the cluster's files (initdb on the first run); the database URL."""
    for folder in (config.logs, config.run, config.keys, config.gcs_data):
        folder.mkdir(parents=True, exist_ok=True)
    keys.issuer_key(config.keys)
    keys.ensure_signing_credentials(config.signing_credentials, config.project)
    pg = cluster(config)
    pg.init()
    link = config.log("postgres")
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to(pg.log)
    return pg.url(DB_NAME)


def up(config: StackConfig, spec: Manifest) -> int:
    """Bring the stack up; 0 when everything answers, 1 when something did not start."""
    began = time.monotonic()
    print(f"==> local stack: {config.state} (project {config.project}, bucket {config.bucket})")
    services = build(config, spec, "")
    by_name = {s.name: s for s in services}
    down = [s for s in services if not s.answers()]
    if by_name["pubsub"] in down:
        try:
            emulator.emulator_command(config.pubsub_port)
        except emulator.EmulatorMissing as exc:
            print(f"!! cannot start the local stack: {exc}")
            return 2
    db_url = _prepare(config, spec)
    services = build(config, spec, db_url)
    down = [s for s in services if s.name in {d.name for d in down}]
    for s in services:
        if s not in down:
            print(f"  = {s.name:<16} 127.0.0.1:{s.port:<6} already running")
    procs_started: dict[str, Popen[bytes]] = {}
    postgres = None
    for s in down:
        if s.name == "postgres":
            postgres = _Postgres(config)
            postgres.start()
            continue
        procs.stop(config.pid_file(s.name))  # a leftover of ours that no longer answers
        assert s.command is not None
        procs_started[s.name] = procs.spawn(
            config.pid_file(s.name), config.log(s.name), s.command(), s.env, ROOT
        )
    failed = _wait(config, down, procs_started, postgres, began)
    if "postgres" not in failed:
        cluster(config).ensure_database(DB_NAME)
        _migrate(db_url, config.log("migrate"))
        print("  . database migrated")
    if "pubsub" not in failed:
        subscriptions = pubsub.ensure_resources(config, spec)
        print(f"  . pubsub: {len(spec.all_topics())} topics, {len(subscriptions)} subscriptions")
    if "gcs" not in failed:
        origins = gcs.configure_bucket(config)[0]["origin"]
        print(f"  . bucket CORS (and CORS_ORIGINS of the api): {', '.join(origins)}")
    env = stack_env(config, spec, db_url)
    config.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    took = time.monotonic() - began
    if failed:
        print(f"!! not started: {', '.join(failed)} ({took:.1f}s)")
        return 1
    print(f"==> stack up in {took:.1f}s; {config.env_file}; API {env['API_URL']}")
    print(f"==> console {env['CONSOLE_URL']} (web/, signed in as a named local user)")
    return 0


def _wait(
    config: StackConfig,
    down: list[Service],
    started: dict[str, Popen[bytes]],
    postgres: _Postgres | None,
    began: float,
) -> list[str]:
    """Wait (bounded) until every started service answers; report each; return the failures."""
    waiting = {s.name: s for s in down}
    failed: list[str] = []
    deadline = time.monotonic() + config.start_timeout_seconds

    def fail(name: str, why: str) -> None:
        failed.append(name)
        del waiting[name]
        print(f"  ✗ {name:<16} {why}; log {config.log(name)}\n{_tail(config.log(name))}")

    while waiting:
        for name, service in list(waiting.items()):
            proc = started.get(name)
            pg_error = postgres.error if postgres and name == "postgres" else None
            if pg_error is not None:
                fail(name, f"did not start: {str(pg_error).splitlines()[0]}")
            elif proc is not None and proc.poll() is not None:
                fail(name, f"exited with code {proc.returncode}")
            elif service.answers():
                del waiting[name]
                took = time.monotonic() - began
                print(f"  ✓ {name:<16} 127.0.0.1:{service.port:<6} up ({took:.1f}s)", flush=True)
        if waiting and time.monotonic() > deadline:
            for name in list(waiting):
                fail(name, f"did not answer within {config.start_timeout_seconds:.0f}s")
        elif waiting:
            time.sleep(0.2)
    return failed
