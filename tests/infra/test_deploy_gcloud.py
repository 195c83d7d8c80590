"""The gcloud script's --dry-run prints every command and runs none of them."""

import os
import subprocess
import sys
from pathlib import Path

from infra import manifest


def test_dry_run_prints_every_deploy_and_runs_nothing(tmp_path: Path, m) -> None:
    # A gcloud (and bash) on PATH that would leave a mark if anything ran.
    marker = tmp_path / "ran"
    for tool in ("gcloud", "bash"):
        fake = tmp_path / tool
        fake.write_text(f"#!/bin/sh\necho {tool} >> {marker}\n")
        fake.chmod(0o755)
    dist = manifest.ROOT / "dist" / "source.zip"
    args = ["--project", "demo-project", "--cors-origins", "https://app.example.com"]
    if not dist.exists():
        args += ["--source", "gs://demo-project-fn-source/source/0123.zip"]
    result = subprocess.run(
        [sys.executable, "-m", "infra.deploy_gcloud", *args, "--dry-run"],
        cwd=manifest.ROOT,
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    lines = result.stdout.splitlines()
    for f in m.functions:
        assert sum(line.startswith(f"gcloud functions deploy {f.name} ") for line in lines) == 1


def test_deploy_refuses_to_start_without_the_cors_origins() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infra.deploy_gcloud", "--project", "p", "--dry-run"],
        cwd=manifest.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--cors-origins" in result.stderr
