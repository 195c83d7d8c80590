"""Where everything of the local stack lives: ports, paths and timings, from the environment.

Every port and interval has a documented default (README, "Local stack") and an environment
variable that overrides it; STACK_PORT_OFFSET moves every default port at once (a second stack
beside the first); all state lives under `.local/` (or STACK_DIR).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from infra.manifest import ROOT, Function, Manifest
from shared.config import DEFAULT_BUCKET

HOST = "127.0.0.1"
DB_NAME = "imagegen"
DEFAULT_PROJECT = "local-project"
CERTS_PATH = "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
# Browser origins the api and the bucket answer CORS for, unless CORS_ORIGINS says otherwise:
# a frontend dev server on any port of this machine.
LOCAL_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*")
T = TypeVar("T")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _parsed(env, name, default, int, "an integer")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _parsed(env, name, default, float, "a number")


def _parsed(
    env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T], what: str
) -> T:
    raw = env.get(name, "").strip()
    try:
        return parse(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be {what}, got {raw!r}") from None


class _Under:
    """A path under the stack's state folder, read as an attribute of the config."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, config: StackConfig, owner: type | None = None) -> Path:
        return config.state / self.name


class _Local:
    """The address on this machine of one of the config's ports, read as an attribute."""

    def __init__(self, port: str, scheme: str = "http://", path: str = "") -> None:
        self.port, self.scheme, self.path = port, scheme, path

    def __get__(self, config: StackConfig, owner: type | None = None) -> str:
        return f"{self.scheme}{HOST}:{getattr(config, self.port)}{self.path}"


def function_port_variable(function: Function) -> str:
    """STACK_PORT_<NAME>: the variable that moves one function off its manifest port."""
    return "STACK_PORT_" + re.sub(r"[^A-Z0-9]", "_", function.name.upper())


@dataclass(frozen=True)
class StackConfig:
    """The stack's settings; `from_env()` reads them, with defaults."""

    state: Path
    project: str = DEFAULT_PROJECT
    bucket: str = DEFAULT_BUCKET
    pg_port: int = 54329
    pubsub_port: int = 8085
    gcs_port: int = 9023
    issuer_port: int = 9011
    relay_port: int = 9012
    console_port: int = 8070
    function_ports: dict[str, int] = field(default_factory=dict)
    poll_seconds: float = 0.2
    schedule_seconds: float = 60.0
    min_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 10.0
    relay_max_attempts: int = 12
    start_timeout_seconds: float = 90.0
    cors_origins: tuple[str, ...] = LOCAL_ORIGINS

    @classmethod
    def from_env(cls, manifest: Manifest, env: Mapping[str, str] | None = None) -> StackConfig:
        env = os.environ if env is None else env
        shift = _int(env, "STACK_PORT_OFFSET", 0)
        ports = {
            f.name: _int(env, function_port_variable(f), f.local_port + shift)
            for f in manifest.functions
        }
        return cls(
            state=Path(env.get("STACK_DIR") or ROOT / ".local").absolute(),
            project=env.get("STACK_PROJECT") or DEFAULT_PROJECT,
            bucket=env.get("STACK_BUCKET") or DEFAULT_BUCKET,
            pg_port=_int(env, "PG_PORT", 54329 + shift),
            pubsub_port=_int(env, "STACK_PUBSUB_PORT", 8085 + shift),
            gcs_port=_int(env, "STACK_GCS_PORT", 9023 + shift),
            issuer_port=_int(env, "STACK_ISSUER_PORT", 9011 + shift),
            relay_port=_int(env, "STACK_RELAY_PORT", 9012 + shift),
            console_port=_int(env, "STACK_CONSOLE_PORT", 8070 + shift),
            function_ports=ports,
            poll_seconds=_float(env, "STACK_POLL_SECONDS", 0.2),
            schedule_seconds=_float(env, "STACK_SCHEDULE_SECONDS", 60.0),
            min_backoff_seconds=_float(env, "STACK_MIN_BACKOFF_SECONDS", 1.0),
            max_backoff_seconds=_float(env, "STACK_MAX_BACKOFF_SECONDS", 10.0),
            relay_max_attempts=_int(env, "STACK_RELAY_MAX_ATTEMPTS", 12),
            start_timeout_seconds=_float(env, "STACK_START_TIMEOUT_SECONDS", 90.0),
            cors_origins=tuple(
                o.strip() for o in env.get("CORS_ORIGINS", "").split(",") if o.strip()
            )
            or LOCAL_ORIGINS,
        )

    # Folders and files under the state folder.
    logs = _Under("logs")
    run = _Under("run")
    keys = _Under("keys")
    pg_root = _Under("postgres")
    gcs_data = _Under("gcs")
    relay_state = _Under("relay-state.json")
    signing_credentials = _Under("signing-sa.json")
    env_file = _Under("stack.env")

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pid_file(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    # Addresses.
    pubsub_host = _Local("pubsub_port", scheme="")
    storage_host = _Local("gcs_port")
    issuer_url = _Local("issuer_port")
    certs_url = _Local("issuer_port", path=CERTS_PATH)
    relay_url = _Local("relay_port")
    console_url = _Local("console_port", path="/")

    def function_url(self, function: Function) -> str:
        return f"http://{HOST}:{self.function_ports[function.name]}/"

    def api_url(self, manifest: Manifest) -> str:
        """The api (the manifest's HTTP function), without a trailing slash."""
        return self.function_url(manifest.by_trigger("http")[0]).rstrip("/")

    def backoff(self, function: Function) -> tuple[float, float]:
        """(minimum, maximum) retry backoff: the manifest's when it has them, else the local ones."""
        low = function.min_backoff_seconds or self.min_backoff_seconds
        high = function.max_backoff_seconds or self.max_backoff_seconds
        return low, max(low, high)
