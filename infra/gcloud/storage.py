"""The media bucket's CORS: infra/cors.py's rule for the deployment's origins, as terraform's
storage.tf sets it (the runbook's commands make the bucket itself)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from infra import cors
from infra.gcloud.target import Target


def bucket_cors(t: Target) -> list[dict[str, Any]]:
    """The bucket's CORS configuration (the JSON that `--cors-file` takes)."""
    return cors.bucket_cors(t.cors_origins)


def bucket_cors_command(t: Target) -> list[str]:
    """Sets the bucket's CORS (the whole configuration: running it again changes nothing)."""
    update = shlex.join(
        ["gcloud", "storage", "buckets", "update", f"gs://{t.bucket}", t.project_flag]
    )
    rules = shlex.quote(json.dumps(bucket_cors(t)))
    return ["bash", "-c", f"{update} --cors-file=<(printf %s {rules})"]
