"""What infra/terraform would create, evaluated offline by terraform itself.

The google provider cannot be downloaded here, so there is no plan. Instead each resource block
is rewritten as a local value holding its arguments for every instance (for_each expanded,
blocks and dynamic blocks as lists of objects), merged with the attributes the provider
computes (ids, emails), which PROVIDER below models. Data sources come from DATA. Variables and
locals are kept as written, and `terraform console` evaluates it all with the manifest's tfvars.
Result: {"google_pubsub_topic.topics": {instance key: {attribute: value}}, ...}; a resource
without for_each is one instance under the key "".
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.infra.fake_gcloud import PROJECT_NUMBER

# Attributes the google provider computes, as HCL over `self` (the instance's arguments).
PROVIDER = {
    "google_service_account": """{
      email = "${self.account_id}@${var.project_id}.iam.gserviceaccount.com"
      name  = "projects/${var.project_id}/serviceAccounts/${self.account_id}@${var.project_id}.iam.gserviceaccount.com"
    }""",
    "google_pubsub_topic": '{ id = "projects/${var.project_id}/topics/${self.name}" }',
    "google_secret_manager_secret": '{ id = "projects/${var.project_id}/secrets/${self.secret_id}" }',
    "google_sql_database_instance": '{ connection_name = "${var.project_id}:${self.region}:${self.name}" }',
    "google_cloudfunctions2_function": """{
      event_trigger = [for t in self.event_trigger : merge(t, {
        trigger = "projects/${var.project_id}/locations/${var.region}/triggers/${self.name}-000000"
      })]
    }""",
}
DATA = {
    "google_project": f'{{ number = "{PROJECT_NUMBER}", project_id = var.project_id }}',
    "google_storage_project_service_account": (
        f'{{ email_address = "service-{PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com" }}'
    ),
}
META_ARGUMENTS = {"for_each", "count", "depends_on", "provider", "lifecycle"}
REFERENCE = re.compile(r"(?<![\w.])(data\.)?((?:google|terraform)_\w+)\.(\w+)")


@dataclass(frozen=True)
class Item:
    """One attribute (`value` set) or block (`body` set) of a body."""

    name: str
    labels: tuple[str, ...] = ()
    value: str | None = None
    body: str | None = None


def _string_end(text: str, i: int) -> int:
    """Index after the quoted template starting at text[i], interpolations included."""
    i += 1
    while text[i] != '"':
        if text[i] == "\\" or text.startswith(("$${", "%%{"), i):
            i += 2
        elif text.startswith(("${", "%{"), i):
            i = _close(text, i + 1)
        else:
            i += 1
    return i + 1


def _close(text: str, i: int) -> int:
    """Index after the bracket that closes the one at text[i]."""
    depth = 0
    while True:
        c = text[i]
        if c == '"':
            i = _string_end(text, i)
            continue
        if c == "#" or text.startswith("//", i):
            i = text.index("\n", i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1


def _expression_end(text: str, i: int) -> int:
    while i < len(text) and text[i] != "\n" and not text.startswith(("#", "//"), i):
        if text[i] == '"':
            i = _string_end(text, i)
        elif text[i] in "([{":
            i = _close(text, i)
        else:
            i += 1
    return i


def parse_body(text: str) -> list[Item]:
    """The attributes and blocks of a body in terraform's native syntax (no heredocs)."""
    assert "<<" not in text, "heredocs are not supported here"
    items, i = [], 0
    token = re.compile(r'\s+|#[^\n]*|//[^\n]*|/\*.*?\*/|([A-Za-z_][\w-]*)|"([^"]*)"|(=)|(\{)', re.S)
    name: str | None = None
    labels: list[str] = []
    while i < len(text):
        match = token.match(text, i)
        assert match, f"cannot read terraform at: {text[i : i + 60]!r}"
        i = match.end()
        identifier, label, equals, brace = match.groups()
        if identifier and name is None:
            name = identifier
        elif (identifier or label) and name is not None:
            labels.append(identifier or label)
        elif equals and name is not None:
            end = _expression_end(text, i)
            items.append(Item(name, value=text[i:end].strip()))
            name, i = None, end
        elif brace and name is not None:
            end = _close(text, i - 1)
            items.append(Item(name, tuple(labels), body=text[i : end - 1]))
            name, labels, i = None, [], end
    assert name is None, f"unfinished item {name!r}"
    return items


def _instances(for_each: str) -> str:
    return f"[for k, v in {for_each} : {{ key = k, value = v }}]"


def _object(body: str) -> str:
    """A block body as one HCL object: attributes as written, nested blocks as lists."""
    fields, blocks = [], {}
    for item in parse_body(body):
        if item.value is not None:
            if item.name not in META_ARGUMENTS:
                fields.append(f"{item.name} = {item.value}")
        elif item.name == "dynamic":
            (label,) = item.labels
            inner = {i.name: i for i in parse_body(item.body or "")}
            assert "iterator" not in inner, "dynamic blocks here use their label as iterator"
            loop = f"[for {label} in {_instances(inner['for_each'].value or '')} :"
            blocks.setdefault(label, []).append(f"{loop} {_object(inner['content'].body or '')}]")
        elif item.name not in META_ARGUMENTS:
            blocks.setdefault(item.name, []).append(f"[{_object(item.body or '')}]")
    fields += [f"{name} = concat({', '.join(parts)})" for name, parts in blocks.items()]
    return "{\n" + "\n".join(fields) + "\n}"


def _local_name(data: str | None, kind: str, name: str) -> str:
    return f"{'d' if data else 'r'}__{kind}__{name}"


def _rewrite(expression: str) -> str:
    """Resource and data references become references to the locals that stand for them."""
    return REFERENCE.sub(lambda m: "local." + _local_name(*m.groups()), expression)


def translate(terraform_dir: Path) -> str:
    """The configuration as variables and locals only, with `local.everything` to evaluate."""
    variables, locals_, everything = [], [], []
    for path in sorted(terraform_dir.glob("*.tf")):
        for block in parse_body(path.read_text()):
            body = block.body or ""
            if block.name == "variable":
                variables.append(f'variable "{block.labels[0]}" {{{body}}}')
            elif block.name == "locals":
                locals_ += [f"{i.name} = {_rewrite(i.value or '')}" for i in parse_body(body)]
            elif block.name == "data":
                kind, name = block.labels
                assert kind in DATA, f"model data.{kind} in tests/infra/terraform_eval.py DATA"
                locals_.append(f"{_local_name('data', kind, name)} = {DATA[kind]}")
            elif block.name == "resource":
                kind, name = block.labels
                local = _local_name(None, kind, name)
                computed = PROVIDER.get(kind, "{}")
                for_each = next((i.value for i in parse_body(body) if i.name == "for_each"), None)
                if for_each is None:
                    args = f'{{ "" = {_object(body)} }}'
                else:
                    args = f"{{ for each in {_instances(for_each)} : each.key => {_object(body)} }}"
                merged = f"{{ for key, self in {_rewrite(args)} : key => merge(self, {computed}) }}"
                locals_.append(f"all__{local} = {merged}")
                # A resource without for_each is referred to as itself, not as a map.
                single = "" if for_each else '[""]'
                locals_.append(f"{local} = local.all__{local}{single}")
                everything.append(f'"{kind}.{name}" = local.all__{local}')
    locals_.append("everything = {\n" + "\n".join(everything) + "\n}")
    return "\n\n".join([*variables, "locals {\n" + "\n\n".join(locals_) + "\n}"]) + "\n"


def evaluate(terraform_dir: Path, variables: dict, workdir: Path) -> dict[str, dict]:
    """Every resource's evaluated instances, for these variables plus the generated tfvars."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not on PATH (it evaluates the configuration offline)")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "main.tf").write_text(translate(terraform_dir))
    for tfvars in terraform_dir.glob("*.auto.tfvars.json"):
        shutil.copy(tfvars, workdir / tfvars.name)
    (workdir / "test.tfvars.json").write_text(json.dumps(variables))
    cli_config = workdir / "terraformrc"
    cli_config.write_text("")
    result = subprocess.run(
        [terraform, "console", "-var-file=test.tfvars.json"],
        input="jsonencode(local.everything)\n",
        cwd=workdir,
        env={"PATH": "/usr/bin:/bin", "HOME": str(workdir), "TF_CLI_CONFIG_FILE": str(cli_config)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr
    quoted = result.stdout.strip().replace("$${", "${").replace("%%{", "%{")
    return json.loads(json.loads(quoted))
