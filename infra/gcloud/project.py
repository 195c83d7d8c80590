"""The project around the functions: the APIs they use and the bucket of source archives."""

from __future__ import annotations

import hashlib
from pathlib import Path

from infra.gcloud.shell import ensure
from infra.gcloud.target import Target
from infra.manifest import Manifest


def enable_apis_command(m: Manifest, t: Target) -> list[str]:
    """The manifest's APIs, as terraform's apis.tf enables them (a no-op for enabled ones)."""
    return ["gcloud", "services", "enable", *m.apis, t.project_flag]


def source_bucket_command(t: Target) -> list[str]:
    bucket = f"gs://{t.source_bucket}"
    describe = ["gcloud", "storage", "buckets", "describe", bucket, t.project_flag]
    create = ["gcloud", "storage", "buckets", "create", bucket, t.project_flag,
              f"--location={t.region}", "--uniform-bucket-level-access",
              "--public-access-prevention"]  # fmt: skip
    return ensure(describe, create)


def archive_object(project: str, archive: Path) -> str:
    """gs://<project>-fn-source/source/<sha256>.zip: the content hash is the release id."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    return f"gs://{project}-fn-source/source/{digest}.zip"


def upload_command(t: Target, archive: Path) -> list[str]:
    return ["gcloud", "storage", "cp", "--no-clobber", str(archive), t.source, t.project_flag]
