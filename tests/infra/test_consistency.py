"""One manifest, three consumers: terraform's variables, the gcloud script's commands and the
database budget agree with infra/functions.toml. (test_parity.py compares terraform with gcloud.)"""

from __future__ import annotations

import json
import re

import pytest

from infra import deploy_gcloud, manifest, tfvars
from infra.gcloud import functions
from infra.gcloud.target import Target
from tests.infra.conftest import TERRAFORM_DIR, resources

TARGET = Target(
    project="demo-project",
    region="europe-west1",
    bucket="demo-bucket",
    cors_origins=("https://app.example.com", "http://localhost:5173"),
    db_instance="imagegen-pg",
    db_name="imagegen",
    source="gs://demo-project-fn-source/source/0123.zip",
)


def one(value):
    """python-hcl2 wraps attribute values and blocks in lists; unwrap a single one."""
    if isinstance(value, list):
        assert len(value) == 1, value
        return value[0]
    return value


def flags(cmd: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for arg in cmd:
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            out.setdefault(key, []).append(value)
    return out


@pytest.fixture(scope="module")
def commands(m: manifest.Manifest) -> list[list[str]]:
    return deploy_gcloud.plan(m, TARGET, archive=None)


def deploy_of(commands: list[list[str]], name: str) -> list[str]:
    found = [c for c in commands if c[:4] == ["gcloud", "functions", "deploy", name]]
    assert len(found) == 1, f"{name}: {len(found)} deploy commands"
    return found[0]


def gcloud_env(cmd: list[str]) -> dict[str, str]:
    (value,) = flags(cmd)["set-env-vars"]
    assert value.startswith("^;^"), "values may hold commas: the list needs its own delimiter"
    return dict(pair.split("=", 1) for pair in value[3:].split(";"))


def test_generated_tfvars_are_up_to_date(m: manifest.Manifest) -> None:
    assert tfvars.TFVARS.read_text() == tfvars.render(m), "run: python -m infra.tfvars"


def test_terraform_gets_every_manifest_function_with_its_settings(m: manifest.Manifest) -> None:
    tf = json.loads(tfvars.TFVARS.read_text())
    assert tf["apis"] == list(m.apis)
    assert tf["dead_letter_hold"] == {
        "message_retention_seconds": m.dead_letter_hold.message_retention_seconds,
        "ack_deadline_seconds": m.dead_letter_hold.ack_deadline_seconds,
    }
    tf = tf["functions"]
    assert sorted(tf) == sorted(f.name for f in m.functions)
    for f in m.functions:
        v = tf[f.name]
        assert (v["entry_point"], v["trigger"], v["topic"], v["retry"]) == (
            f.entry_point, f.trigger, f.topic, f.retry,
        )  # fmt: skip
        assert (v["timeout_seconds"], v["memory"], v["max_instances"], v["pool_size"]) == (
            f.timeout_seconds, f.memory, f.max_instances, f.pool_size,
        )  # fmt: skip
        assert v["pool_timeout_seconds"] == f.pool_timeout_seconds
        assert (v["dead_letter_topic"], v["max_delivery_attempts"]) == (
            f.dead_letter_topic, f.max_delivery_attempts,
        )  # fmt: skip


def test_each_function_has_one_gcloud_deploy_matching_the_manifest(m, commands) -> None:
    for f in m.functions:
        fl = flags(deploy_of(commands, f.name))
        assert fl["entry-point"] == [f.entry_point]
        assert fl["timeout"] == [f"{f.timeout_seconds}s"]
        assert fl["memory"] == [f.memory]
        assert fl["max-instances"] == [str(f.max_instances)]
        assert fl["service-account"] == [TARGET.sa_email(f.account_id)]
        assert fl["source"] == [TARGET.source]
        if f.trigger == "http":
            assert "trigger-http" in fl
            assert not {"trigger-topic", "trigger-event-filters", "retry", "no-retry"} & set(fl)
        elif f.trigger == "gcs_finalize":
            assert sorted(fl["trigger-event-filters"]) == [
                f"bucket={TARGET.bucket}", f"type={manifest.GCS_FINALIZED}",
            ]  # fmt: skip
            assert "trigger-topic" not in fl
        else:
            assert fl["trigger-topic"] == [f.topic]
            assert "trigger-event-filters" not in fl
        if f.trigger != "http":
            assert ("retry" in fl, "no-retry" in fl) == (f.retry, not f.retry)
        secrets = fl.get("set-secrets", [""])[0]
        assert sorted(s.split("=")[0] for s in secrets.split(",") if s) == sorted(f.secrets)


def test_each_function_gets_its_pool_size_and_database_user(m, commands) -> None:
    for f in m.functions:
        env = gcloud_env(deploy_of(commands, f.name))
        assert env == functions.env_vars(f, TARGET, m)
        assert env["DB_POOL_SIZE"] == str(f.pool_size)
        assert float(env["DB_POOL_TIMEOUT_SECONDS"]) == f.pool_timeout_seconds
        assert env["DB_USER"] == f"{f.account_id}@{TARGET.project}.iam"
        assert {env[f"TOPIC_{k.upper()}"] for k in m.topics} == set(m.topics.values())


def test_every_function_gets_the_manifests_model_limits(m, commands) -> None:
    limits = m.model_limits
    for f in m.functions:
        env = gcloud_env(deploy_of(commands, f.name))
        assert env["OPENAI_CONCURRENT_IMAGES"] == str(limits.concurrent_images)
        assert env["OPENAI_IMAGES_PER_MINUTE"] == str(limits.images_per_minute)
    assert json.loads(tfvars.TFVARS.read_text())["model_limits"] == {
        "concurrent_images": limits.concurrent_images,
        "images_per_minute": limits.images_per_minute,
    }


def test_the_environment_names_are_ones_the_config_reads(m) -> None:
    config = (manifest.ROOT / "shared" / "config.py").read_text()
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', config))
    names = set(functions.env_vars(m.functions[0], TARGET, m))
    assert names - read == {"THREADS"}  # functions-framework's: gunicorn threads


def test_concurrency_cpu_and_threads_follow_the_manifest(m, commands) -> None:
    for f in m.functions:
        fl = flags(deploy_of(commands, f.name))
        assert fl["concurrency"] == [str(f.concurrency)]
        assert fl.get("cpu") == ([f.cpu] if f.cpu else None)
        assert gcloud_env(deploy_of(commands, f.name))["THREADS"] == str(f.concurrency)
    tf = json.loads(tfvars.TFVARS.read_text())["functions"]
    assert {(n, v["concurrency"], v["cpu"]) for n, v in tf.items()} == {
        (f.name, f.concurrency, f.cpu) for f in m.functions
    }


def test_dead_letters_are_set_for_every_pubsub_function_that_has_one(m, commands) -> None:
    scripts = [c[2] for c in commands if c[:2] == ["bash", "-c"] and "--dead-letter-topic" in c[2]]
    expected = [f for f in m.functions if f.dead_letter_topic]
    assert len(scripts) == len(expected) == 5
    for f, script in zip(expected, scripts, strict=True):
        assert f"gcloud functions describe {f.name} " in script
        assert f"--dead-letter-topic={TARGET.topic_path(f.dead_letter_topic)}" in script
        assert f"--max-delivery-attempts={f.max_delivery_attempts}" in script


def test_schedules_publish_their_bodies_to_the_maintenance_topic(m, commands) -> None:
    schedules = json.loads(tfvars.TFVARS.read_text())["schedules"]
    expected = {s.name: s for f in m.functions for s in f.schedules}
    assert set(schedules) == set(expected) and expected
    jobs = [c[2] for c in commands if "gcloud scheduler jobs create pubsub" in " ".join(c)]
    # The full topic name: a bare one is resolved from gcloud's default project, not --project.
    topic = f"--topic={TARGET.topic_path(m.maintenance_topic)}"
    for name, s in expected.items():
        assert schedules[name] == {"cron": s.cron, "body": s.body, "topic": m.maintenance_topic}
        assert json.loads(s.body), "Pub/Sub pushes without data are refused: never an empty body"
        assert any(f"create pubsub {name} " in job and topic in job for job in jobs)


def test_the_openai_secret_is_named_as_the_code_expects(hcl: dict) -> None:
    secret = resources(hcl, "google_secret_manager_secret")["openai_api_key"]
    assert one(secret["secret_id"]) == manifest.OPENAI_SECRET_ID
    assert resources(hcl, "google_secret_manager_secret_version") == {}, "no value in state"


def test_only_the_functions_that_call_openai_read_its_key(m) -> None:
    readers = {f.name for f in m.functions if "OPENAI_API_KEY" in f.secrets}
    assert readers == {"plan-generation", "render-image"}
    assert {f.name for f in m.functions if f.signs_urls} == {"api", "deliver-webhooks"}


def test_connection_budget(m: manifest.Manifest) -> None:
    used = m.connections_used()
    assert used <= m.connections_available(), (
        f"sum(max_instances * pool_size) = {used} > {m.max_connections} - {m.reserved_connections}"
    )


def test_tf_files_are_split_by_concern() -> None:
    names = {p.name for p in TERRAFORM_DIR.glob("*.tf")}
    assert {"functions.tf", "iam.tf", "database.tf", "storage.tf", "pubsub.tf"} <= names


def test_bucket_roles_and_vpc_access_follow_the_manifest(m, commands, hcl) -> None:
    tf = json.loads(tfvars.TFVARS.read_text())["functions"]
    for f in m.functions:
        member = f"--member=serviceAccount:{TARGET.sa_email(f.account_id)}"
        bucket_binding = ["gcloud", "storage", "buckets", "add-iam-policy-binding"]
        grants = [c for c in commands if c[:4] == bucket_binding and member in c]
        assert [flags(c)["role"] for c in grants] == [[f.bucket_role]], f.name
        assert (tf[f.name]["bucket_role"], tf[f.name]["vpc"]) == (f.bucket_role, f.vpc)
    binding = resources(hcl, "google_storage_bucket_iam_member")["functions_objects"]
    assert one(binding["role"]) == "${each.value.bucket_role}"
    tf_function = resources(hcl, "google_cloudfunctions2_function")["functions"]
    service = one(tf_function["service_config"])
    assert one(service["vpc_connector"]).startswith("${each.value.vpc ? var.vpc_connector : ")
    for f in m.functions:  # (test_parity.py: both paths, with a private-IP database)
        network = flags(deploy_of(commands, f.name))
        assert ("clear-vpc-connector" in network) == (not f.vpc or TARGET.connector_path is None)


def test_deliver_webhooks_holds_the_least(m) -> None:
    f = m.function("deliver-webhooks")
    assert (f.trigger, f.topic, f.retry) == ("pubsub", m.topics["generation_events"], True)
    assert f.dead_letter_topic and f.max_delivery_attempts
    assert (f.bucket_role, f.vpc) == ("roles/storage.objectViewer", False)
    assert (f.publishes, f.secrets, f.signs_urls) == ((), (), True)
    assert [g.name for g in m.functions if not g.vpc] == ["deliver-webhooks"]


def test_no_deployment_relaxes_the_webhook_address_check(m, commands) -> None:
    # WEBHOOK_ALLOW_LOOPBACK_HTTP is the local stack's alone (tools/stack/services.py); terraform
    # sets the same environment as the gcloud script (test_parity.py).
    for f in m.functions:
        assert "WEBHOOK_ALLOW_LOOPBACK_HTTP" not in gcloud_env(deploy_of(commands, f.name))
