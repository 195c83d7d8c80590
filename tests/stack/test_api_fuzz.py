"""schemathesis against the running `api` function, driven by the committed OpenAPI document:
every operation, positive and negative data, every phase (coverage, fuzzing, stateful), every
check (schemathesis runs all of them unless told otherwise: no server error, statuses, content
types, headers and bodies as documented, schema-valid requests accepted and schema-violating
ones refused, resources available after creation and gone after deletion, auth enforced). What
a check cannot hold is named, with the reason, in schemathesis.toml; the run is bounded there.

One worker: the stateful scenarios share one user, so a scenario on another worker may delete
the session (and with it the job) that this one has just created; and schemathesis's workers are
threads whose data generation parses lambdas with `ast`, which CPython 3.11 does not do safely
from two threads at once (gh-106905: an intermittent SystemError inside schemathesis).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from tests.stack.conftest import Stack
from tools.fixtures.processes import ROOT
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
        "--workers=1",
        "--request-timeout=30",
        "--report=junit",
        f"--report-dir={tmp_path}",
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    summary = result.stdout[-8000:]
    assert result.returncode == 0, summary
    assert " failed" not in summary.splitlines()[-1]
    operations = sum(len(ops) for ops in json.loads(DOCUMENT.read_text())["paths"].values())
    assert f"{operations} selected / {operations} total" in result.stdout
