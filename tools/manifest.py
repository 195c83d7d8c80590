"""A typed view of `infra/functions.toml`, the one manifest of the deployed functions.

The local stack, the deploy scripts and the tests read the manifest through `load()`, so a
typo in the file fails in one place with a clear message.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "infra" / "functions.toml"
TRIGGERS = ("http", "gcs_finalize", "pubsub")


@dataclass(frozen=True)
class Schedule:
    """A Cloud Scheduler job publishing `body` to the function's topic."""

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
    dead_letter_topic: str | None = None
    max_delivery_attempts: int | None = None
    object_prefix: str | None = None
    min_backoff_seconds: float | None = None
    max_backoff_seconds: float | None = None
    schedules: tuple[Schedule, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """The whole file: database budget, topics and functions."""

    max_connections: int
    reserved_connections: int
    topics: dict[str, str]
    functions: tuple[Function, ...]

    def by_trigger(self, trigger: str) -> list[Function]:
        return [f for f in self.functions if f.trigger == trigger]

    def function(self, name: str) -> Function:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(name)

    def all_topics(self) -> list[str]:
        """Every topic: the named ones, the triggers' and their dead-letter topics, sorted."""
        names = set(self.topics.values())
        for f in self.functions:
            names.update(t for t in (f.topic, f.dead_letter_topic) if t)
        return sorted(names)

    def dead_letter_topics(self) -> list[str]:
        return sorted({f.dead_letter_topic for f in self.functions if f.dead_letter_topic})

    def connection_budget(self) -> int:
        """Connections all functions may open at once: sum of max instances x pool size."""
        return sum(f.max_instances * f.pool_size for f in self.functions)


_REQUIRED = {
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
_OPTIONAL = {
    "topic": str,
    "dead_letter_topic": str,
    "max_delivery_attempts": int,
    "object_prefix": str,
    "min_backoff_seconds": (int, float),
    "max_backoff_seconds": (int, float),
}


def _function(raw: dict[str, Any], problems: list[str]) -> Function | None:
    label = raw.get("name", "<unnamed>")
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
    unknown = set(raw) - set(_REQUIRED) - set(_OPTIONAL) - {"schedules"}
    if unknown:
        problems.append(f"function {label}: unknown keys {sorted(unknown)}")
    if fields.get("trigger") not in TRIGGERS:
        problems.append(f"function {label}: trigger must be one of {TRIGGERS}")
    if fields.get("trigger") == "pubsub" and "topic" not in fields:
        problems.append(f"function {label}: a pubsub trigger needs a topic")
    if ("dead_letter_topic" in fields) != ("max_delivery_attempts" in fields):
        problems.append(
            f"function {label}: dead_letter_topic and max_delivery_attempts go together"
        )
    schedules = tuple(
        Schedule(name=s["name"], cron=s["cron"], body=s["body"]) for s in raw.get("schedules", [])
    )
    if len(fields) < len(_REQUIRED) or problems:
        return None
    return Function(**fields, schedules=schedules)


def load(path: Path = MANIFEST) -> Manifest:
    """Read and validate the manifest; raise ValueError listing every problem."""
    raw = tomllib.loads(path.read_text())
    problems: list[str] = []
    functions = [_function(f, problems) for f in raw.get("functions", [])]
    ports = [f.local_port for f in functions if f]
    if len(ports) != len(set(ports)):
        problems.append("two functions share a local_port")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    database = raw.get("database", {})
    return Manifest(
        max_connections=int(database.get("max_connections", 100)),
        reserved_connections=int(database.get("reserved_connections", 0)),
        topics=dict(raw.get("topics", {})),
        functions=tuple(f for f in functions if f),
    )
