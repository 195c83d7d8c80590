"""One manifest, three consumers: terraform, the gcloud script and the database budget agree."""

from __future__ import annotations

import json
import re

import pytest

from infra import deploy_gcloud, manifest, tfvars
from tests.infra.conftest import TERRAFORM_DIR, resources

TARGET = deploy_gcloud.Target(
    project="demo-project",
    region="europe-west1",
    bucket="demo-bucket",
    cors_origins=("https://app.example.com", "http://localhost:5173"),
    instance_connection_name="demo-project:europe-west1:imagegen-pg",
    db_name="imagegen",
    db_ip_type="public",
    source="gs://demo-project-fn-source/source/0123.zip",
)


def one(value):
    """python-hcl2 wraps attribute values and blocks in lists; unwrap a single one."""
    if isinstance(value, list):
        assert len(value) == 1, value
        return value[0]
    return value


def dynamic(body: dict, name: str) -> dict:
    blocks = [d[name] for d in body.get("dynamic", []) if name in d]
    assert len(blocks) == 1, f"expected one dynamic {name!r}"
    return blocks[0]


def flags(cmd: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for arg in cmd:
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            out.setdefault(key, []).append(value)
    return out


def gcloud_env(cmd: list[str]) -> dict[str, str]:
    (value,) = flags(cmd)["set-env-vars"]
    assert value.startswith("^;^")
    return dict(pair.split("=", 1) for pair in value[3:].split(";"))


@pytest.fixture(scope="module")
def tf_function(hcl: dict) -> dict:
    functions = resources(hcl, "google_cloudfunctions2_function")
    assert list(functions) == ["functions"], "one for_each resource makes every function"
    return functions["functions"]


@pytest.fixture(scope="module")
def tf_env(tf_function: dict) -> dict[str, str]:
    return one(one(tf_function["service_config"])["environment_variables"])


@pytest.fixture(scope="module")
def commands(m: manifest.Manifest) -> list[list[str]]:
    return deploy_gcloud.plan(m, TARGET, archive=None)


def deploy_of(commands: list[list[str]], name: str) -> list[str]:
    found = [c for c in commands if c[:4] == ["gcloud", "functions", "deploy", name]]
    assert len(found) == 1, f"{name}: {len(found)} deploy commands"
    return found[0]


def test_generated_tfvars_are_up_to_date(m: manifest.Manifest) -> None:
    assert tfvars.TFVARS.read_text() == tfvars.render(m), "run: python -m infra.tfvars"


def test_terraform_gets_every_manifest_function_with_its_settings(m: manifest.Manifest) -> None:
    tf = json.loads(tfvars.TFVARS.read_text())["functions"]
    assert sorted(tf) == sorted(f.name for f in m.functions)
    for f in m.functions:
        v = tf[f.name]
        assert (v["entry_point"], v["trigger"], v["topic"], v["retry"]) == (
            f.entry_point, f.trigger, f.topic, f.retry,
        )  # fmt: skip
        assert (v["timeout_seconds"], v["memory"], v["max_instances"], v["pool_size"]) == (
            f.timeout_seconds, f.memory, f.max_instances, f.pool_size,
        )  # fmt: skip
        assert (v["dead_letter_topic"], v["max_delivery_attempts"]) == (
            f.dead_letter_topic, f.max_delivery_attempts,
        )  # fmt: skip


def test_the_terraform_function_takes_each_setting_from_its_manifest_entry(tf_function) -> None:
    assert one(tf_function["for_each"]) == "${var.functions}"
    build = one(tf_function["build_config"])
    service = one(tf_function["service_config"])
    assert one(build["entry_point"]) == "${each.value.entry_point}"
    assert one(build["runtime"]) == deploy_gcloud.RUNTIME
    assert one(service["timeout_seconds"]) == "${each.value.timeout_seconds}"
    assert one(service["available_memory"]) == "${each.value.memory}"
    assert one(service["max_instance_count"]) == "${each.value.max_instances}"
    trigger = dynamic(tf_function, "event_trigger")
    assert 'each.value.trigger == "http" ? []' in one(trigger["for_each"])
    content = one(trigger["content"])
    assert one(content["retry_policy"]) == (
        '${each.value.retry ? "RETRY_POLICY_RETRY" : "RETRY_POLICY_DO_NOT_RETRY"}'
    )
    assert "google_pubsub_topic.topics[each.value.topic].id" in one(content["pubsub_topic"])
    filters = one(dynamic(content, "event_filters")["content"])
    assert one(filters["attribute"]) == "bucket"


def test_event_types_match_the_manifest_kinds(hcl: dict) -> None:
    event_types = one(hcl["functions.tf"]["locals"][0]["event_types"])
    assert event_types == {
        "gcs_finalize": manifest.GCS_FINALIZED,
        "pubsub": manifest.PUBSUB_PUBLISHED,
    }


def test_each_function_has_one_gcloud_deploy_matching_the_manifest(m, commands) -> None:
    for f in m.functions:
        fl = flags(deploy_of(commands, f.name))
        assert fl["entry-point"] == [f.entry_point]
        assert fl["timeout"] == [f"{f.timeout_seconds}s"]
        assert fl["memory"] == [f.memory]
        assert fl["max-instances"] == [str(f.max_instances)]
        assert fl["service-account"] == [TARGET.sa_email(f.account_id)]
        assert fl["source"] == [TARGET.source]
        assert ("retry" in fl) is f.retry
        if f.trigger == "http":
            assert "trigger-http" in fl
            assert not {"trigger-topic", "trigger-event-filters"} & set(fl)
        elif f.trigger == "gcs_finalize":
            assert sorted(fl["trigger-event-filters"]) == [
                f"bucket={TARGET.bucket}", f"type={manifest.GCS_FINALIZED}",
            ]  # fmt: skip
            assert "trigger-topic" not in fl
        else:
            assert fl["trigger-topic"] == [f.topic]
            assert "trigger-event-filters" not in fl
        secrets = fl.get("set-secrets", [""])[0]
        assert sorted(s.split("=")[0] for s in secrets.split(",") if s) == sorted(f.secrets)


def test_terraform_and_gcloud_set_the_same_environment(m, commands, tf_env) -> None:
    for f in m.functions:
        env = gcloud_env(deploy_of(commands, f.name))
        assert sorted(env) == sorted(tf_env), f.name
        assert env["DB_POOL_SIZE"] == str(f.pool_size)
        assert env["DB_USER"] == f"{f.account_id}@{TARGET.project}.iam"
        assert {env[f"TOPIC_{k.upper()}"] for k in m.topics} == set(m.topics.values())
    assert tf_env["DB_POOL_SIZE"] == "${tostring(each.value.pool_size)}"
    assert tf_env["DB_IAM_AUTH"] == "true"


def test_the_environment_names_are_ones_the_config_reads(tf_env) -> None:
    config = (manifest.ROOT / "shared" / "config.py").read_text()
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', config))
    assert set(tf_env) - read == {"THREADS"}  # functions-framework's: gunicorn threads


def test_concurrency_cpu_and_threads_follow_the_manifest(m, commands, tf_function, tf_env) -> None:
    for f in m.functions:
        fl = flags(deploy_of(commands, f.name))
        assert fl["concurrency"] == [str(f.concurrency)]
        assert fl.get("cpu") == ([f.cpu] if f.cpu else None)
        assert gcloud_env(deploy_of(commands, f.name))["THREADS"] == str(f.concurrency)
    service = one(tf_function["service_config"])
    assert one(service["max_instance_request_concurrency"]) == "${each.value.concurrency}"
    assert one(service["available_cpu"]) == "${each.value.cpu}"
    assert tf_env["THREADS"] == "${tostring(each.value.concurrency)}"
    tf = json.loads(tfvars.TFVARS.read_text())["functions"]
    assert {(n, v["concurrency"], v["cpu"]) for n, v in tf.items()} == {
        (f.name, f.concurrency, f.cpu) for f in m.functions
    }


def test_dead_letters_are_set_for_every_pubsub_function_that_has_one(m, commands, hcl) -> None:
    scripts = [c[2] for c in commands if c[:2] == ["bash", "-c"] and "--dead-letter-topic" in c[2]]
    expected = [f for f in m.functions if f.dead_letter_topic]
    assert len(scripts) == len(expected) == 4
    for f, script in zip(expected, scripts, strict=True):
        assert f"gcloud functions describe {f.name} " in script
        assert f"--dead-letter-topic={TARGET.topic_path(f.dead_letter_topic)}" in script
        assert f"--max-delivery-attempts={f.max_delivery_attempts}" in script
    policy = resources(hcl, "terraform_data")["dead_letter_policy"]
    assert "if f.dead_letter_topic != " in one(policy["for_each"])
    topics = resources(hcl, "google_pubsub_topic")
    assert set(topics) == {"topics", "dead_letter"}


def test_schedules_publish_their_bodies_to_the_maintenance_topic(m, commands) -> None:
    schedules = json.loads(tfvars.TFVARS.read_text())["schedules"]
    expected = {s.name: s for f in m.functions for s in f.schedules}
    assert set(schedules) == set(expected) and expected
    jobs = [c[2] for c in commands if "gcloud scheduler jobs create pubsub" in " ".join(c)]
    for name, s in expected.items():
        assert schedules[name] == {"cron": s.cron, "body": s.body, "topic": m.maintenance_topic}
        assert json.loads(s.body), "Pub/Sub pushes without data are refused: never an empty body"
        assert any(f"create pubsub {name} " in job and "--topic=maintenance" in job for job in jobs)


def test_the_openai_secret_is_named_as_the_code_expects(hcl: dict) -> None:
    secret = resources(hcl, "google_secret_manager_secret")["openai_api_key"]
    assert one(secret["secret_id"]) == manifest.OPENAI_SECRET_ID
    assert resources(hcl, "google_secret_manager_secret_version") == {}, "no value in state"


def test_only_the_functions_that_call_openai_read_its_key(m) -> None:
    readers = {f.name for f in m.functions if "OPENAI_API_KEY" in f.secrets}
    assert readers == {"plan-generation", "render-image"}
    assert {f.name for f in m.functions if f.signs_urls} == {"api"}


def test_connection_budget(m: manifest.Manifest) -> None:
    used = m.connections_used()
    assert used <= m.connections_available(), (
        f"sum(max_instances * pool_size) = {used} > {m.max_connections} - {m.reserved_connections}"
    )


def test_tf_files_are_split_by_concern() -> None:
    names = {p.name for p in TERRAFORM_DIR.glob("*.tf")}
    assert {"functions.tf", "iam.tf", "database.tf", "storage.tf", "pubsub.tf"} <= names
