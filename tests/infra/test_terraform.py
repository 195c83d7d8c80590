"""Offline checks of infra/terraform: formatted, parseable, and clean under checkov.

The google provider cannot be downloaded here, so `terraform init/validate` cannot run;
`terraform fmt` works offline, the parsing and checkov run from .venv-infra.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.infra.conftest import INFRA_VENV, TERRAFORM_DIR, infra_python
from tests.infra.terraform_eval import REFERENCE, parse_body

SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")
LOCAL = re.compile(r"\blocal\.(\w+)")
APIS = "google_project_service.apis"
# Served by the APIs that infra/RUNBOOK.md enables before terraform runs (Service Usage,
# Resource Manager): these need not wait for apis.tf.
BEFORE_TERRAFORM = {"google_project_service", "google_project", "google_project_iam_member"}


def test_terraform_is_formatted() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not on PATH (install it to check formatting)")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", TERRAFORM_DIR],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout


def test_every_tf_file_parses(hcl: dict) -> None:
    files = sorted(p.name for p in TERRAFORM_DIR.glob("*.tf"))
    assert files and sorted(hcl) == files
    assert all(hcl[name] for name in files), "a .tf file parsed to nothing"


def test_checkov_finds_no_failed_check() -> None:
    """checkov's offline output carries no severities, so every failed check counts; the
    accepted ones are skipped inline, each with its reason (see the next test)."""
    infra_python()
    result = subprocess.run(
        [INFRA_VENV / "bin" / "checkov", "-d", TERRAFORM_DIR, "--framework", "terraform",
         "--output", "json", "--compact", "--quiet", "--skip-download"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['resource']} {c['check_name']}"
        for r in reports
        for c in r["results"]["failed_checks"]
    ]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in reports) > 0
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_checkov_skip_gives_a_reason() -> None:
    skips = [
        (path.name, match.group(1), (match.group(2) or "").strip())
        for path in TERRAFORM_DIR.glob("*.tf")
        for match in SKIP_COMMENT.finditer(path.read_text())
    ]
    assert skips, "expected the documented skips (bucket versioning, SQL public IP, ...)"
    assert [s for s in skips if len(s[2]) < 20] == []


def _references() -> dict[str, set[str]]:
    """{resource or data address: the addresses its body refers to, through locals too}."""
    bodies, locals_ = {}, {}
    for path in TERRAFORM_DIR.glob("*.tf"):
        for block in parse_body(path.read_text()):
            if block.name in ("resource", "data"):
                prefix = "data." if block.name == "data" else ""
                bodies[prefix + ".".join(block.labels)] = block.body or ""
            elif block.name == "locals":
                locals_ |= {i.name: i.value or "" for i in parse_body(block.body or "")}

    def refs(text: str, expanded: frozenset[str] = frozenset()) -> set[str]:
        found = {f"{data or ''}{kind}.{name}" for data, kind, name in REFERENCE.findall(text)}
        for name in set(LOCAL.findall(text)) - expanded:
            found |= refs(locals_[name], expanded | {name})
        return found

    return {address: refs(body) for address, body in bodies.items()}


def test_every_resource_waits_for_the_apis_it_calls() -> None:
    """A first apply in a new project must not race the enabling of an API (IAM for the
    service accounts, ...): every resource depends on apis.tf, directly or through another."""
    graph = _references()
    assert APIS in graph

    def waits(address: str, seen: set[str]) -> bool:
        if address == APIS:
            return True
        seen.add(address)
        return any(waits(ref, seen) for ref in graph.get(address, ()) - seen)

    kind = lambda address: address.removeprefix("data.").split(".")[0]  # noqa: E731
    racing = [a for a in graph if kind(a) not in BEFORE_TERRAFORM and not waits(a, set())]
    assert racing == []
    assert waits("google_service_account.functions", set())
