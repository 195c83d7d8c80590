"""infra/RUNBOOK.md's commands work as written.

Every gcloud command in it names its project. The "First deploy" section's command blocks run
as written, in order, from a copy of the repository, with stand-ins that record their calls:
gcloud (tests/infra/fake_gcloud.py), terraform, and make (whose `package` target runs the
packager itself). The real gcloud then checks, offline, that it accepts every recorded call.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra import manifest
from tests.infra.conftest import TERRAFORM_DIR
from tests.infra.gcloud_cli import Recorder, rejections

RUNBOOK = manifest.ROOT / "infra" / "RUNBOOK.md"
PROJECT, REGION = "demo-project", "europe-west1"
FENCED = re.compile(r"```sh\n(.*?)```", re.S)
INLINE = re.compile(r"`([^`\n]+)`")


def section(title: str) -> str:
    text = RUNBOOK.read_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def gcloud_commands(markdown: str) -> list[str]:
    """Each gcloud command of the code in `markdown`, continuation lines joined."""
    code = [*FENCED.findall(markdown), *INLINE.findall(FENCED.sub("", markdown))]
    commands = []
    for snippet in code:
        joined = snippet.replace("\\\n", " ")
        commands += [m.group(0) for m in re.finditer(r"\bgcloud [^|;&\n]*", joined)]
    return commands


def test_every_gcloud_command_of_the_runbook_names_its_project() -> None:
    commands = gcloud_commands(RUNBOOK.read_text())
    assert len(commands) > 10
    unnamed = [c for c in commands if "--project" not in c and not c.startswith("gcloud auth ")]
    assert unnamed == []


def _scratch_clone(folder: Path) -> Path:
    """The repository's files as a fresh clone would have them (plus uncommitted edits)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=manifest.ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = manifest.ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    return folder


@pytest.fixture(scope="module")
def first_deploy(tmp_path_factory) -> tuple[Recorder, Path, list[list[str]]]:
    """Runs the section's blocks; (recorder, the copy, terraform's recorded calls)."""
    work = tmp_path_factory.mktemp("runbook")
    clone = _scratch_clone(work / "repo")
    recorder = Recorder(work)
    terraform_log = work / "terraform-calls"
    recorder.add_tool("terraform", f'echo "$*" >> "{terraform_log}"')
    recorder.add_tool("make", '[ "$*" = package ] && exec python -m tools.package; exit 2')
    blocks = FENCED.findall(section("First deploy"))
    assert len(blocks) >= 5
    for block in blocks:
        recorder.run(block, cwd=clone, PROJECT=PROJECT, REGION=REGION, OPENAI_API_KEY="sk-test")
    terraform_calls = [line.split() for line in terraform_log.read_text().splitlines()]
    return recorder, clone, terraform_calls


def test_the_terraform_steps_apply_the_secret_first(first_deploy) -> None:
    _, _, terraform_calls = first_deploy
    assert [call[0] for call in terraform_calls] == ["init", "apply"]
    apply = terraform_calls[1]
    assert f"project_id={PROJECT}" in apply
    (target,) = [a.removeprefix("-target=") for a in apply if a.startswith("-target=")]
    kind, name = target.split(".")
    config = "".join(p.read_text() for p in TERRAFORM_DIR.glob("*.tf"))
    assert f'resource "{kind}" "{name}"' in config, f"{target} is not in infra/terraform"


def test_the_gcloud_path_uploads_the_archive_it_built_and_deploys_from_it(first_deploy) -> None:
    recorder, clone, _ = first_deploy
    calls = recorder.calls()
    digest = hashlib.sha256((clone / "dist" / "source.zip").read_bytes()).hexdigest()
    source = f"gs://{PROJECT}-fn-source/source/{digest}.zip"
    uploads = [c for c in calls if c[1:3] == ["storage", "cp"]]
    archive = str(clone / "dist" / "source.zip")
    assert uploads == [["gcloud", "storage", "cp", "--no-clobber", archive, source,
                        f"--project={PROJECT}"]]  # fmt: skip
    deploys = [c for c in calls if c[1:3] == ["functions", "deploy"]]
    assert len(deploys) == len(manifest.load().functions)
    assert all(f"--source={source}" in d for d in deploys)


def test_every_recorded_call_names_the_project(first_deploy) -> None:
    recorder, _, _ = first_deploy
    calls = recorder.calls()
    assert ["gcloud", "services", "enable", "serviceusage.googleapis.com",
            "cloudresourcemanager.googleapis.com", f"--project={PROJECT}"] in calls  # fmt: skip
    positional = {("projects", "describe"), ("projects", "add-iam-policy-binding")}
    unnamed = [
        c for c in calls
        if f"--project={PROJECT}" not in c and not (tuple(c[1:3]) in positional and c[3] == PROJECT)
    ]  # fmt: skip
    assert unnamed == []


def test_the_real_gcloud_accepts_every_recorded_call(first_deploy, tmp_path: Path) -> None:
    recorder, _, _ = first_deploy
    assert rejections(recorder.calls(), tmp_path) == {}
