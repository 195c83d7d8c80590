"""The services of the local stack: how each starts, where it listens, how it is probed."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from infra.manifest import ROOT, Function, Manifest
from shared.config import firebase_issuer
from tools.pgcluster import Cluster
from tools.stack import emulator
from tools.stack.config import CERTS_PATH, DB_NAME, HOST, StackConfig
from tools.stack.procs import http_answers, port_answers

# The claim lease of a plan or a shot (RENDER_LEASE_SECONDS; 30 s on GCP) unless the caller sets
# it. A killed worker's claim lapses this long after its last heartbeat, and until then its
# redeliveries are refused as busy. A message's later attempts must outlast the lease, or it is
# dead-lettered and only the sweeper finishes the job: on GCP the backoff (10-600 s) spaces five
# attempts over about 150 s; locally (1-10 s) the attempts after a restart span 2 + 4 + 8 s.
LOCAL_LEASE_SECONDS = 6


@dataclass
class Service:
    """One process (or, for PostgreSQL, one cluster) of the stack."""

    name: str
    port: int
    probe_url: str | None = None
    # The command, built only when the service must start (finding Java may fail).
    command: Callable[[], list[str]] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def answers(self) -> bool:
        """Up means: its port answers (and its HTTP probe, when it has one)."""
        if self.probe_url:
            return http_answers(self.probe_url)
        return port_answers(self.port)


def cluster(config: StackConfig) -> Cluster:
    return Cluster(config.pg_root, config.pg_port)


def database_url(config: StackConfig) -> str:
    return cluster(config).url(DB_NAME)


def child_env(config: StackConfig) -> dict[str, str]:
    """The caller's environment (OPENAI_*, LOG_LEVEL, ... pass through) plus the stack's."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        STACK_DIR=str(config.state),
        GCP_PROJECT=config.project,
        BUCKET_NAME=config.bucket,
        PUBSUB_EMULATOR_HOST=config.pubsub_host,
        STORAGE_EMULATOR_HOST=config.storage_host,
    )
    return env


def local_threads(function: Function) -> int:
    """The gunicorn threads of a function's one local process, from the manifest. An HTTP
    function's process is one instance: the threads GCP gives it (THREADS = concurrency). An event
    function's process stands in for all its instances: a thread per request they serve at once
    (the relay pushes that many), plus one that answers the stack's probes while all of them run."""
    if function.trigger == "http":
        return function.concurrency
    return function.requests_at_once + 1


def function_env(config: StackConfig, spec: Manifest, name: str, db_url: str) -> dict[str, str]:
    """What a function reads on GCP, pointed at the local stand-ins, and one gunicorn worker with
    `local_threads` threads."""
    function = spec.function(name)
    env = child_env(config)
    env.setdefault("RENDER_LEASE_SECONDS", str(LOCAL_LEASE_SECONDS))
    env.update(
        DATABASE_URL=db_url,
        DB_POOL_SIZE=str(function.pool_size),
        DB_POOL_TIMEOUT_SECONDS=f"{function.pool_timeout_seconds:g}",
        AUTH_ISSUER=firebase_issuer(config.project),
        AUTH_AUDIENCE=config.project,
        AUTH_CERTS_URL=config.certs_url,
        SIGNING_CREDENTIALS_FILE=str(config.signing_credentials),
        CORS_ORIGINS=",".join(config.cors_origins),
        WEBHOOK_ALLOW_LOOPBACK_HTTP="true",  # the one relaxation: webhook receivers on 127.0.0.1
        K_SERVICE=function.name,
        CLOUD_RUN_TIMEOUT_SECONDS=str(function.timeout_seconds),
        WORKERS="1",
        THREADS=str(local_threads(function)),
    )
    return env


def build(config: StackConfig, spec: Manifest, db_url: str) -> list[Service]:
    """Every service, in start order: PostgreSQL first, the functions last."""
    python = sys.executable
    base = child_env(config)
    services = [
        Service("postgres", config.pg_port),
        Service(
            "pubsub",
            config.pubsub_port,
            probe_url=f"http://{config.pubsub_host}/",
            command=lambda: emulator.emulator_command(config.pubsub_port),
            env=base,
        ),
    ]
    # The stack's own servers, each `python -m tools.stack.<name>`, and the URL that probes it.
    own = (
        ("gcs", config.gcs_port, f"{config.storage_host}/storage/v1/b/{config.bucket}"),
        ("issuer", config.issuer_port, config.issuer_url + CERTS_PATH),
        ("relay", config.relay_port, config.relay_url + "/healthz"),
        ("console", config.console_port, config.console_url + "config.json"),
    )
    for name, port, probe_url in own:
        module = [python, "-m", f"tools.stack.{name}"]
        services.append(
            Service(name, port, probe_url=probe_url, command=lambda m=module: m, env=base)  # type: ignore[misc]
        )
    for f in spec.functions:
        port = config.function_ports[f.name]
        cmd = [python, "-m", "functions_framework", "--source", str(ROOT / f.source)]
        cmd += ["--target", f.entry_point, f"--host={HOST}", f"--port={port}"]
        probe = f"http://{HOST}:{port}" + ("/v1/healthz" if f.trigger == "http" else "/")
        services.append(
            Service(
                f.name,
                port,
                probe_url=probe,
                command=lambda cmd=cmd: cmd,  # type: ignore[misc]
                env=function_env(config, spec, f.name, db_url),
            )
        )
    return services
