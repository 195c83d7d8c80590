"""The media bucket's CORS and lifecycle, as terraform's storage.tf sets them (the runbook's
commands make the bucket itself): infra/cors.py's rule for the deployment's origins, and objects
under quarantine/ deleted after the retention."""

from __future__ import annotations

import json
import shlex
from typing import Any

from infra import cors
from infra.gcloud.target import Target

QUARANTINE_PREFIX = "quarantine/"


def bucket_cors(t: Target) -> list[dict[str, Any]]:
    """The bucket's CORS configuration (the JSON that `--cors-file` takes)."""
    return cors.bucket_cors(t.cors_origins)


def bucket_lifecycle(t: Target) -> dict[str, Any]:
    """The bucket's lifecycle configuration (the JSON that `--lifecycle-file` takes)."""
    return {
        "rule": [
            {
                "action": {"type": "Delete"},
                "condition": {
                    "age": t.quarantine_retention_days,
                    "matchesPrefix": [QUARANTINE_PREFIX],
                },
            }
        ]
    }


def bucket_settings_command(t: Target) -> list[str]:
    """Sets the bucket's CORS and lifecycle (each whole: running it again changes nothing)."""
    update = shlex.join(
        ["gcloud", "storage", "buckets", "update", f"gs://{t.bucket}", t.project_flag]
    )
    rules = shlex.quote(json.dumps(bucket_cors(t)))
    lifecycle = shlex.quote(json.dumps(bucket_lifecycle(t)))
    return [
        "bash",
        "-c",
        f"{update} --cors-file=<(printf %s {rules}) --lifecycle-file=<(printf %s {lifecycle})",
    ]
