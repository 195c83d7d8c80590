"""The gcloud script: --dry-run runs nothing, and mistakes stop it early."""

import os
import subprocess
import sys
from pathlib import Path

from infra import manifest

PROJECT = "demo-project"
DEPLOY = ["--project", PROJECT, "--region", "europe-west1", "--cors-origins",
          "https://app.example.com", "--source", f"gs://{PROJECT}-fn-source/source/0123.zip"]  # fmt: skip


def _deploy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra.deploy_gcloud", *args, "--dry-run"],
        cwd=manifest.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


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
    result = _deploy("--project", "p")
    assert result.returncode == 2
    assert "--cors-origins" in result.stderr


def test_a_private_ip_without_a_connector_is_refused_saying_what_is_missing() -> None:
    result = _deploy(*DEPLOY, "--db-ip-type", "private")
    assert result.returncode == 2
    assert "--db-ip-type=private needs --vpc-connector" in result.stderr
    assert _deploy(*DEPLOY, "--vpc-connector", "c").returncode == 2, "a connector for public IP"


def test_the_apis_step_enables_the_manifests_apis_alone(m) -> None:
    result = _deploy("apis", "--project", PROJECT)
    assert result.stdout.splitlines() == [
        f"gcloud services enable {' '.join(m.apis)} --project={PROJECT}"
    ]
