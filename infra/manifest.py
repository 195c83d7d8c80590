"""The typed view of infra/functions.toml, shared by the local stack and every deploy tool.

tools/package.py, infra/deploy_gcloud.py (and infra/gcloud/), infra/tfvars.py and tests/infra
read the manifest through `load()`, so the archive, the gcloud commands and the terraform
variables cannot disagree about a function.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "infra" / "functions.toml"

TRIGGERS = ("http", "gcs_finalize", "pubsub")
GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
OPENAI_SECRET_ID = "openai-api-key"  # noqa: S105 (the secret's name, not its value)
# Environment variables the functions may read from Secret Manager, and the secret behind each.
SECRETS = {"OPENAI_API_KEY": OPENAI_SECRET_ID}
BUCKET_ROLES = ("roles/storage.objectAdmin", "roles/storage.objectViewer")


@dataclass(frozen=True)
class Schedule:
    """A Cloud Scheduler job publishing `body` to the maintenance topic."""

    name: str
    cron: str
    body: str


@dataclass(frozen=True)
class Function:
    """One deployed function and its trigger."""

    name: str
    entry_point: str
    source: str
    trigger: str
    local_port: int
    timeout_seconds: int
    memory: str
    max_instances: int
    pool_size: int
    retry: bool
    topic: str | None = None
    object_prefix: str | None = None
    dead_letter_topic: str | None = None
    max_delivery_attempts: int | None = None
    min_backoff_seconds: float | None = None
    max_backoff_seconds: float | None = None
    publishes: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    signs_urls: bool = False
    bucket_role: str = BUCKET_ROLES[0]
    vpc: bool = True
    schedules: tuple[Schedule, ...] = ()
    concurrency: int = 1
    cpu: str | None = None
    listens: bool = False
    pool_timeout_seconds: float = 10.0

    @property
    def connections(self) -> int:
        """Database connections one instance may hold: its pool, and a LISTEN connection."""
        return self.pool_size + self.listens

    @property
    def requests_at_once(self) -> int:
        """Requests all its instances serve at once: max_instances x concurrency."""
        return self.max_instances * self.concurrency

    @property
    def module(self) -> str:
        """Dotted module of the entry point, e.g. functions.api.main."""
        return self.source.removesuffix(".py").replace("/", ".")

    @property
    def account_id(self) -> str:
        """The function's own service account id (6-30 characters)."""
        return f"fn-{self.name}"[:30]


@dataclass(frozen=True)
class HoldSubscription:
    """The never-expiring pull subscription that keeps a dead-letter topic's messages."""

    message_retention_seconds: int
    ack_deadline_seconds: int


@dataclass(frozen=True)
class Capacity:
    """What the render fleet is sized for, and what its shots cost the database."""

    shots_in_flight: int
    shot_seconds: float
    transaction_seconds_per_shot: float
    safety_factor: float

    def transactions(self, shots: int) -> float:
        """Peak concurrent transactions of `shots` in flight: each spends
        transaction_seconds_per_shot of its shot_seconds in transactions, times the safety
        factor (bursts: a wave of claims at once, slow round trips)."""
        return shots * self.transaction_seconds_per_shot / self.shot_seconds * self.safety_factor


@dataclass(frozen=True)
class ModelLimits:
    """The OpenAI organisation's image limits, shared by every instance through PostgreSQL."""

    concurrent_images: int
    images_per_minute: int


@dataclass(frozen=True)
class Manifest:
    """The whole file: APIs, capacity, model limits, database budget, topics, dead-letter holds
    and functions."""

    capacity: Capacity
    model_limits: ModelLimits
    functions: tuple[Function, ...]
    topics: dict[str, str]
    max_connections: int
    reserved_connections: int
    apis: tuple[str, ...]
    dead_letter_hold: HoldSubscription

    @property
    def dead_letter_topics(self) -> list[str]:
        return sorted({f.dead_letter_topic for f in self.functions if f.dead_letter_topic})

    @property
    def maintenance_topic(self) -> str:
        return self.topics["maintenance"]

    def all_topics(self) -> list[str]:
        """Every topic: the named ones, the triggers' and their dead-letter topics, sorted."""
        names = set(self.topics.values())
        for f in self.functions:
            names.update(t for t in (f.topic, f.dead_letter_topic) if t)
        return sorted(names)

    def by_trigger(self, trigger: str) -> list[Function]:
        return [f for f in self.functions if f.trigger == trigger]

    def function(self, name: str) -> Function:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(name)

    def connections_used(self) -> int:
        """Connections all functions may open at once: sum of max instances x connections."""
        return sum(f.max_instances * f.connections for f in self.functions)

    def connections_available(self) -> int:
        return self.max_connections - self.reserved_connections


_REQUIRED: dict[str, Any] = {
    "name": str,
    "entry_point": str,
    "source": str,
    "trigger": str,
    "local_port": int,
    "timeout_seconds": int,
    "memory": str,
    "max_instances": int,
    "pool_size": int,
    "retry": bool,
}
_OPTIONAL: dict[str, Any] = {
    "topic": str,
    "object_prefix": str,
    "dead_letter_topic": str,
    "max_delivery_attempts": int,
    "min_backoff_seconds": (int, float),
    "max_backoff_seconds": (int, float),
    "publishes": list,
    "secrets": list,
    "signs_urls": bool,
    "bucket_role": str,
    "vpc": bool,
    "schedules": list,
    "concurrency": int,
    "cpu": str,
    "listens": bool,
    "pool_timeout_seconds": (int, float),
}
# Requests per instance above 1 need at least one vCPU (Cloud Functions' rule), and Cloud Run
# takes at most 1000.
MAX_CONCURRENCY = 1000


def vcpus(cpu: str | None) -> float:
    """A `cpu` setting as a number of vCPUs (0 when unset or not a number)."""
    try:
        return float(cpu or 0)
    except ValueError:
        return 0.0


def _typed_fields(raw: dict[str, Any], label: str, problems: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, kind in (_REQUIRED | _OPTIONAL).items():
        if key not in raw:
            if key in _REQUIRED:
                problems.append(f"function {label}: missing {key}")
            continue
        value = raw[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"function {label}: {key} has the wrong type ({value!r})")
            continue
        fields[key] = value
    unknown = set(raw) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        problems.append(f"function {label}: unknown keys {sorted(unknown)}")
    return fields


def _function(raw: dict[str, Any], topics: set[str], problems: list[str]) -> Function | None:
    label = raw.get("name", "<unnamed>")
    before = len(problems)
    fields = _typed_fields(raw, label, problems)
    trigger = fields.get("trigger")
    if trigger not in TRIGGERS:
        problems.append(f"function {label}: trigger must be one of {TRIGGERS}")
    if trigger == "pubsub" and fields.get("topic") not in topics:
        problems.append(f"function {label}: topic {fields.get('topic')!r} is not in [topics]")
    if fields.get("dead_letter_topic") and trigger == "http":
        problems.append(f"function {label}: dead_letter_topic needs an event trigger")
    if ("dead_letter_topic" in fields) != ("max_delivery_attempts" in fields):
        problems.append(
            f"function {label}: dead_letter_topic and max_delivery_attempts go together"
        )
    elif "dead_letter_topic" in fields and not 5 <= fields["max_delivery_attempts"] <= 100:
        problems.append(f"function {label}: max_delivery_attempts must be 5..100 (Pub/Sub's range)")
    concurrency = fields.get("concurrency", 1)
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        problems.append(f"function {label}: concurrency must be 1..{MAX_CONCURRENCY}")
    elif concurrency > 1 and vcpus(fields.get("cpu")) < 1:
        problems.append(f"function {label}: concurrency above 1 needs cpu of at least 1")
    for topic in fields.get("publishes", []):
        if topic not in topics:
            problems.append(f"function {label}: publishes to unknown topic {topic!r}")
    if fields.get("bucket_role", BUCKET_ROLES[0]) not in BUCKET_ROLES:
        problems.append(f"function {label}: bucket_role must be one of {BUCKET_ROLES}")
    for secret in fields.get("secrets", []):
        if secret not in SECRETS:
            problems.append(
                f"function {label}: unknown secret {secret!r}; known: {sorted(SECRETS)}"
            )
    if len(problems) > before:
        return None
    fields["publishes"] = tuple(fields.get("publishes", ()))
    fields["secrets"] = tuple(fields.get("secrets", ()))
    fields["schedules"] = tuple(Schedule(**s) for s in fields.get("schedules", ()))
    return Function(**fields)


def _apis(raw: dict[str, Any], problems: list[str]) -> tuple[str, ...]:
    apis = raw.get("project", {}).get("apis")
    if not isinstance(apis, list) or not apis:
        problems.append("[project] apis must list the Google APIs to enable")
        return ()
    wrong = [a for a in apis if not (isinstance(a, str) and a.endswith(".googleapis.com"))]
    if wrong:
        problems.append(f"[project] apis: not service names {wrong}")
    return tuple(apis)


def _dead_letter_hold(raw: dict[str, Any], problems: list[str]) -> HoldSubscription:
    hold = raw.get("dead_letter_hold", {})
    # Pub/Sub's ranges: retention 10 minutes to 31 days, ack deadline 10 to 600 seconds.
    limits = {"message_retention_seconds": (600, 2678400), "ack_deadline_seconds": (10, 600)}
    for key, (low, high) in limits.items():
        value = hold.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            problems.append(f"[dead_letter_hold] {key} must be an integer in {low}..{high}")
    return HoldSubscription(**{key: hold.get(key, 0) for key in limits})


def _numbers(raw: dict[str, Any], table: str, kinds: dict[str, Any], problems: list[str]) -> dict:
    """The positive numbers of one table, each of its kind (int, or int or float)."""
    values = raw.get(table, {})
    for key, kind in kinds.items():
        value = values.get(key)
        if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
            problems.append(f"[{table}] {key} must be a positive number, got {value!r}")
    unknown = set(values) - set(kinds)
    if unknown:
        problems.append(f"[{table}] unknown keys {sorted(unknown)}")
    return {key: values.get(key) for key in kinds}


def load(path: Path = MANIFEST) -> Manifest:
    """Read and validate the manifest; raise ValueError listing every problem."""
    raw = tomllib.loads(path.read_text())
    topics = dict(raw.get("topics", {}))
    problems: list[str] = []
    apis = _apis(raw, problems)
    dead_letter_hold = _dead_letter_hold(raw, problems)
    number = (int, float)
    capacity = _numbers(
        raw,
        "capacity",
        {
            "shots_in_flight": int,
            "shot_seconds": number,
            "transaction_seconds_per_shot": number,
            "safety_factor": number,
        },
        problems,
    )
    limits = _numbers(raw, "openai", {"concurrent_images": int, "images_per_minute": int}, problems)
    functions = [_function(f, set(topics.values()), problems) for f in raw.get("functions", [])]
    loaded = [f for f in functions if f]
    if len({f.name for f in loaded}) != len(loaded):
        problems.append("two functions share a name")
    if len({f.local_port for f in loaded}) != len(loaded):
        problems.append("two functions share a local_port")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    database = raw.get("database", {})
    return Manifest(
        capacity=Capacity(**capacity),
        model_limits=ModelLimits(**limits),
        functions=tuple(loaded),
        topics=topics,
        max_connections=int(database.get("max_connections", 100)),
        reserved_connections=int(database.get("reserved_connections", 0)),
        apis=apis,
        dead_letter_hold=dead_letter_hold,
    )
