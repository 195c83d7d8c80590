"""Shared fixtures of the deploy tests: the manifest, the built archive, the parsed terraform,
the recorded gcloud deploys."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from infra import manifest
from tests.infra.gcloud_cli import Deploys
from tools import package

TERRAFORM_DIR = manifest.ROOT / "infra" / "terraform"
# checkov and python-hcl2 live in their own venv (their pins clash with the app's).
INFRA_VENV = Path(os.environ.get("INFRA_VENV", manifest.ROOT / ".venv-infra"))

_PARSE_HCL = """
import json, pathlib, sys
import hcl2
out = {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.tf")):
    with path.open() as handle:
        out[path.name] = hcl2.load(handle)
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def m() -> manifest.Manifest:
    return manifest.load()


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package.build(tmp_path_factory.mktemp("dist") / "source.zip")


@pytest.fixture(scope="session")
def deploys(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Deploys:
    return Deploys(tmp_path_factory.mktemp("deploys"), archive)


def infra_python() -> Path:
    python = INFRA_VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(
            f"{INFRA_VENV} is missing (python-hcl2, checkov): create it with "
            "python3.11 -m venv .venv-infra && .venv-infra/bin/pip install -r requirements-infra.txt"
        )
    return python


@pytest.fixture(scope="session")
def hcl() -> dict:
    """Every .tf file of infra/terraform parsed by python-hcl2: {file name: document}."""
    result = subprocess.run(
        [infra_python(), "-c", _PARSE_HCL, TERRAFORM_DIR],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def resources(hcl: dict, kind: str) -> dict[str, dict]:
    """All resources of one type across the files: {name: body}."""
    found: dict[str, dict] = {}
    for document in hcl.values():
        for block in document.get("resource", []):
            for name, body in block.get(kind, {}).items():
                assert name not in found, f"{kind}.{name} is defined twice"
                found[name] = body
    return found
