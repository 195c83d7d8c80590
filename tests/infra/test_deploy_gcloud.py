"""The gcloud script: --dry-run runs nothing, mistakes stop it early, and the real gcloud
accepts every call a deploy makes, in a new project and in one where everything exists."""

import json
import os
import subprocess
import sys
from pathlib import Path

from infra import manifest
from tests.infra.gcloud_cli import PROJECT, Deploys, rejections

DEPLOY = ["--project", PROJECT, "--region", "europe-west1", "--cors-origins",
          "https://app.example.com", "--source", f"gs://{PROJECT}-fn-source/source/0123.zip"]  # fmt: skip
# The scheduler call as it was: gcloud resolves a bare --topic from the default project while
# parsing, before --project applies. The check must reject it, or it proves nothing.
BARE_TOPIC = ["gcloud", "scheduler", "jobs", "create", "pubsub", "sweep-jobs",
              "--location=europe-west1", "--schedule=*/5 * * * *", "--topic=maintenance",
              '--message-body={"task": "sweep_jobs"}', f"--project={PROJECT}"]  # fmt: skip


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


def test_the_real_gcloud_accepts_every_call_of_a_deploy(tmp_path: Path, deploys: Deploys) -> None:
    """Public and private IP, in a new project and in one where everything exists."""
    calls = [
        call
        for private in (False, True)
        for existing in (False, True)
        for call in deploys.calls(private, existing)
    ]
    assert len(calls) > 400
    cors_files = [a for call in calls for a in call if a.startswith("--cors-file=")]
    assert len(cors_files) == 4, "one CORS update per deploy"
    lifecycles = [a for call in calls for a in call if a.startswith("--lifecycle-file=")]
    assert len(lifecycles) == 4, "the quarantine lifecycle, in the same update"
    # A CORS rule with a misnamed field, which gcloud itself would drop without a word.
    misnamed = tmp_path / "cors.json"
    misnamed.write_text(json.dumps([{"origin": ["https://a.example"], "responseHeaders": []}]))
    bad_cors = ["gcloud", "storage", "buckets", "update", "gs://b", f"--cors-file={misnamed}",
                f"--project={PROJECT}"]  # fmt: skip
    # A lifecycle rule with a misspelt condition.
    misspelt = tmp_path / "lifecycle.json"
    misspelt.write_text(
        json.dumps(
            {
                "rule": [
                    {"action": {"type": "Delete"}, "condition": {"age": 1, "matchPrefix": ["q/"]}}
                ]
            }
        )
    )
    bad_lifecycle = ["gcloud", "storage", "buckets", "update", "gs://b",
                     f"--lifecycle-file={misspelt}", f"--project={PROJECT}"]  # fmt: skip
    rejected = rejections([*calls, BARE_TOPIC, bad_cors, bad_lifecycle], tmp_path / "home")
    assert list(rejected) == [" ".join(c) for c in (BARE_TOPIC, bad_cors, bad_lifecycle)]
    assert "projectsId" in rejected[" ".join(BARE_TOPIC)]
    assert "responseHeaders" in rejected[" ".join(bad_cors)]
