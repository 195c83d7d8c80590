"""schemathesis against the running `api` function, driven by the committed OpenAPI document:
every operation, positive and negative data, every phase (coverage, fuzzing, stateful), every
check (no server error, statuses, content types, headers and bodies as documented). Bounded by
schemathesis.toml so that the run takes about a minute."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from tests.stack.conftest import ROOT, Stack
from tools.openapi import DOCUMENT

pytestmark = pytest.mark.stack
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_the_api_keeps_its_document_under_fuzzing(stack: Stack, tmp_path: Path) -> None:
    api = stack.env["API_URL"]
    user = f"fuzzer-{uuid.uuid4().hex[:8]}"
    token = requests.get(
        f"{stack.env['TOKEN_ISSUER_URL']}/token", params={"user": user}, timeout=10
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    for title in ("first", "second"):  # something for the stateful phase to walk
        requests.post(f"{api}/v1/sessions", json={"title": title}, headers=headers, timeout=10)
    command = [
        str(SCHEMATHESIS),
        "run",
        "openapi/openapi.json",
        f"--url={api}",
        f"--header=Authorization: Bearer {token}",
        "--workers=2",
        "--request-timeout=30",
        "--report=junit",
        f"--report-dir={tmp_path}",
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    summary = result.stdout[-8000:]
    assert result.returncode == 0, summary
    operations = sum(len(ops) for ops in json.loads(DOCUMENT.read_text())["paths"].values())
    assert f"{operations} selected / {operations} total" in result.stdout
    assert " failed" not in summary.splitlines()[-1]
