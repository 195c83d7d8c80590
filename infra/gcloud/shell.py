"""Shell glue for steps that depend on what exists: each a `bash -c` line that runs as printed."""

from __future__ import annotations

import shlex


def ensure(describe: list[str], create: list[str]) -> list[str]:
    """Creates a resource only when describing it fails."""
    return ["bash", "-c", f"{shlex.join(describe)} >/dev/null 2>&1 || {shlex.join(create)}"]


def upsert(describe: list[str], create: list[str], update: list[str]) -> list[str]:
    """Creates a resource, or brings an existing one to the same settings."""
    check = f"{shlex.join(describe)} >/dev/null 2>&1"
    return ["bash", "-c", f"if {check}; then {shlex.join(update)}; else {shlex.join(create)}; fi"]


def pubsub_agent(project: str) -> str:
    """Shell text: the Pub/Sub service agent, found from the project number at run time."""
    number = shlex.join(["gcloud", "projects", "describe", project])
    return f"\"serviceAccount:service-$({number} --format='value(projectNumber)')@gcp-sa-pubsub.iam.gserviceaccount.com\""
