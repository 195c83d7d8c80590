"""Where everything of the local stack lives: ports, paths and timings, from the environment.

Every port and interval has a documented default (README, "Local stack") and an environment
variable that overrides it; STACK_PORT_OFFSET moves every default port at once (a second stack
beside the first); all state lives under `.local/` (or STACK_DIR).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infra.manifest import ROOT, Function, Manifest
from shared.config import DEFAULT_BUCKET

HOST = "127.0.0.1"
DB_NAME = "imagegen"
DEFAULT_PROJECT = "local-project"
CERTS_PATH = "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
# Browser origins the api and the bucket answer CORS for, unless CORS_ORIGINS says otherwise:
# a frontend dev server on any port of this machine.
LOCAL_ORIGINS = ("http://localhost:*", "http://127.0.0.1:*")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from None


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
    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def keys(self) -> Path:
        return self.state / "keys"

    @property
    def pg_root(self) -> Path:
        return self.state / "postgres"

    @property
    def gcs_data(self) -> Path:
        return self.state / "gcs"

    @property
    def relay_state(self) -> Path:
        return self.state / "relay-state.json"

    @property
    def signing_credentials(self) -> Path:
        return self.state / "signing-sa.json"

    @property
    def env_file(self) -> Path:
        return self.state / "stack.env"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pid_file(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    # Addresses.
    @property
    def pubsub_host(self) -> str:
        return f"{HOST}:{self.pubsub_port}"

    @property
    def storage_host(self) -> str:
        return f"http://{HOST}:{self.gcs_port}"

    @property
    def issuer_url(self) -> str:
        return f"http://{HOST}:{self.issuer_port}"

    @property
    def certs_url(self) -> str:
        return self.issuer_url + CERTS_PATH

    @property
    def auth_issuer(self) -> str:
        return f"https://securetoken.google.com/{self.project}"

    @property
    def relay_url(self) -> str:
        return f"http://{HOST}:{self.relay_port}"

    @property
    def console_url(self) -> str:
        return f"http://{HOST}:{self.console_port}/"

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
