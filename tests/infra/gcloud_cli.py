"""The gcloud side of the deploy tests.

`Recorder` runs shell lines (the deploy's printed commands, the runbook's blocks) with a
stand-in `gcloud` on PATH (fake_gcloud.py) and returns every call they made. `rejections` asks
the real Google Cloud CLI, offline, whether it accepts calls (gcloud_parse_driver.py).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from infra import manifest
from infra.gcloud import project

HERE = Path(__file__).parent
# Any request that escaped would go to this closed port, never to Google.
NOWHERE = "http://127.0.0.1:9"
PROJECT, REGION, CONNECTOR = "demo-project", "europe-west1", "imagegen-connector"
# The deploy the tests record; not the defaults, so that a setting one side ignores shows.
SETTINGS = {
    "bucket": "demo-media",
    "cors-origins": "https://app.example.com,http://localhost:5173",
    "quarantine-retention-days": "21",
    "db-instance": "demo-pg",
    "db-name": "demo",
    "openai-secret-version": "7",
    "auth-issuer": "https://issuer.example.com",
    "auth-audience": "demo-audience",
}


class Recorder:
    """A bin folder whose `gcloud` records its calls, as a new or an existing project answers."""

    def __init__(self, folder: Path, existing: bool = False) -> None:
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.log = folder / "gcloud-calls.jsonl"
        self.log.touch()
        self.existing = existing
        self.add_tool("gcloud", f'exec "{sys.executable}" -I -S "{HERE / "fake_gcloud.py"}" "$@"')

    def add_tool(self, name: str, script: str) -> None:
        tool = self.bin / name
        tool.write_text(f"#!/bin/sh\n{script}\n")
        tool.chmod(0o755)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
        env |= {"PATH": f"{self.bin}:{Path(sys.executable).parent}:{os.environ['PATH']}"}
        env |= {"FAKE_GCLOUD_LOG": str(self.log), **extra}
        if self.existing:
            env["FAKE_GCLOUD_EXISTING"] = "1"
        return env

    def run(self, script: str, cwd: Path = manifest.ROOT, **env: str) -> str:
        """Runs shell text as bash would from a terminal, failing on the first error; its stdout."""
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{script}\n{result.stderr[-3000:]}"
        return result.stdout

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def dry_run(*args: str) -> list[str]:
    """The lines `python -m infra.deploy_gcloud ... --dry-run` prints."""
    result = subprocess.run(
        [sys.executable, "-m", "infra.deploy_gcloud", *args, "--dry-run"],
        cwd=manifest.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def recorded_deploy(recorder: Recorder, *args: str) -> list[list[str]]:
    """Every gcloud call of a deploy: each printed line run as printed, in order."""
    for line in dry_run(*args):
        recorder.run(line)
    return recorder.calls()


class Deploys:
    """The gcloud calls of one deploy per (private IP, existing resources), each recorded once."""

    def __init__(self, folder: Path, archive: Path) -> None:
        self.folder = folder
        self.archive = archive

    def args(self, private: bool) -> list[str]:
        args = ["--project", PROJECT, "--region", REGION]
        args += [item for key, value in SETTINGS.items() for item in (f"--{key}", value)]
        args += ["--source", project.archive_object(PROJECT, self.archive)]
        return args + (["--db-ip-type", "private", "--vpc-connector", CONNECTOR] if private else [])

    @functools.cache  # noqa: B019 (one instance per test session)
    def calls(self, private: bool, existing: bool) -> list[list[str]]:
        recorder = Recorder(self.folder / f"private={private}-existing={existing}", existing)
        return recorded_deploy(recorder, *self.args(private))


def _real_gcloud_env(home: Path) -> dict[str, str]:
    """A throwaway configuration: no account, no default project, no metadata server."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "CLOUDSDK_CONFIG": str(home / "gcloud"),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        **{name: NOWHERE for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")},
    }


@functools.cache
def _installation() -> dict:
    """`gcloud info`: where its Python and its SDK are."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("gcloud is not installed: the commands cannot be checked against its parser")
    with tempfile.TemporaryDirectory() as home:
        info = subprocess.run(
            [gcloud, "info", "--format=json"],
            env=_real_gcloud_env(Path(home)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert info.returncode == 0, info.stderr
    return json.loads(info.stdout)


def rejections(calls: list[list[str]], home: Path) -> dict[str, str]:
    """{command: gcloud's error} for each call the installed gcloud does not accept."""
    installation = _installation()
    env = _real_gcloud_env(home)
    unique = list(dict.fromkeys(json.dumps(call) for call in calls))
    result = subprocess.run(
        [
            installation["basic"]["python_location"],
            HERE / "gcloud_parse_driver.py",
            installation["installation"]["sdk_root"],
        ],
        input="\n".join(unique) + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    verdicts = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(verdicts) == len(unique), result.stderr[-3000:]
    return {" ".join(v["argv"]): v["error"] for v in verdicts if not v["accepted"]}
