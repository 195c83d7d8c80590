"""The deploy view of infra/functions.toml: typed, validated, shared by every deploy tool.

tools/package.py, infra/deploy_gcloud.py, infra/tfvars.py and tests/infra read the manifest
through `load()`, so the archive, the gcloud commands and the terraform variables cannot
disagree about a function.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "infra" / "functions.toml"

TRIGGERS = ("http", "gcs_finalize", "pubsub")
GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
OPENAI_SECRET_ID = "openai-api-key"  # noqa: S105 (the secret's name, not its value)
# Environment variables the functions may read from Secret Manager, and the secret behind each.
SECRETS = {"OPENAI_API_KEY": OPENAI_SECRET_ID}


@dataclass(frozen=True)
class Schedule:
    name: str
    cron: str
    body: str


@dataclass(frozen=True)
class Function:
    name: str
    entry_point: str
    source: str
    trigger: str
    timeout_seconds: int
    memory: str
    max_instances: int
    pool_size: int
    retry: bool
    topic: str | None = None
    object_prefix: str | None = None
    dead_letter_topic: str | None = None
    max_delivery_attempts: int | None = None
    publishes: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    signs_urls: bool = False
    schedules: tuple[Schedule, ...] = ()

    @property
    def module(self) -> str:
        """Dotted module of the entry point, e.g. functions.api.main."""
        return self.source.removesuffix(".py").replace("/", ".")

    @property
    def account_id(self) -> str:
        """The function's own service account id (6-30 characters)."""
        return f"fn-{self.name}"[:30]


@dataclass(frozen=True)
class Manifest:
    functions: tuple[Function, ...]
    topics: dict[str, str]
    max_connections: int
    reserved_connections: int

    @property
    def dead_letter_topics(self) -> list[str]:
        return [f.dead_letter_topic for f in self.functions if f.dead_letter_topic]

    @property
    def maintenance_topic(self) -> str:
        return self.topics["maintenance"]

    def connections_used(self) -> int:
        return sum(f.max_instances * f.pool_size for f in self.functions)

    def connections_available(self) -> int:
        return self.max_connections - self.reserved_connections


def _function(raw: dict, topics: set[str]) -> Function:
    name = raw.get("name", "?")
    problems = []
    if raw.get("trigger") not in TRIGGERS:
        problems.append(f"trigger must be one of {TRIGGERS}")
    if raw.get("trigger") == "pubsub" and raw.get("topic") not in topics:
        problems.append(f"topic {raw.get('topic')!r} is not in [topics]")
    if raw.get("dead_letter_topic") and raw.get("trigger") != "pubsub":
        problems.append("dead_letter_topic needs a pubsub trigger")
    if raw.get("dead_letter_topic") and not 5 <= raw.get("max_delivery_attempts", 0) <= 100:
        problems.append("max_delivery_attempts must be 5..100 (Pub/Sub's range)")
    for topic in raw.get("publishes", []):
        if topic not in topics:
            problems.append(f"publishes to unknown topic {topic!r}")
    for secret in raw.get("secrets", []):
        if secret not in SECRETS:
            problems.append(f"unknown secret {secret!r}; known: {sorted(SECRETS)}")
    if problems:
        raise ValueError(f"infra/functions.toml, function {name}: " + "; ".join(problems))
    return Function(
        name=raw["name"],
        entry_point=raw["entry_point"],
        source=raw["source"],
        trigger=raw["trigger"],
        timeout_seconds=raw["timeout_seconds"],
        memory=raw["memory"],
        max_instances=raw["max_instances"],
        pool_size=raw["pool_size"],
        retry=raw["retry"],
        topic=raw.get("topic"),
        object_prefix=raw.get("object_prefix"),
        dead_letter_topic=raw.get("dead_letter_topic"),
        max_delivery_attempts=raw.get("max_delivery_attempts"),
        publishes=tuple(raw.get("publishes", ())),
        secrets=tuple(raw.get("secrets", ())),
        signs_urls=raw.get("signs_urls", False),
        schedules=tuple(Schedule(**s) for s in raw.get("schedules", ())),
    )


def load(path: Path = MANIFEST) -> Manifest:
    raw = tomllib.loads(path.read_text())
    topics = dict(raw["topics"])
    functions = tuple(_function(f, set(topics.values())) for f in raw["functions"])
    names = [f.name for f in functions]
    if len(set(names)) != len(names):
        raise ValueError(f"infra/functions.toml: duplicate function names in {names}")
    return Manifest(
        functions=functions,
        topics=topics,
        max_connections=raw["database"]["max_connections"],
        reserved_connections=raw["database"]["reserved_connections"],
    )
