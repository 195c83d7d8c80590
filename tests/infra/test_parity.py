"""Terraform and the gcloud script deploy the same thing, field by field.

The terraform side is the configuration evaluated by terraform (terraform_eval.py) plus the
gcloud calls of its dead-letter step; the gcloud side is every call the script's dry-run lines
make when run as printed (gcloud_cli.Recorder). Both are read into one vocabulary
(deployment.py) and compared, for a public and a private-IP database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra import deployment, terraform_eval
from tests.infra.conftest import TERRAFORM_DIR
from tests.infra.deployment import Deployment
from tests.infra.deployment_gcloud import from_gcloud
from tests.infra.gcloud_cli import CONNECTOR, PROJECT, REGION, SETTINGS, Deploys, Recorder

TERRAFORM_NAMES = {"bucket": "bucket_name", "db-instance": "db_instance_name"}
ORIGINS = SETTINGS["cors-origins"].split(",")
PRIVATE_IP = {
    "db_private_network": f"projects/{PROJECT}/global/networks/default",
    "vpc_connector": f"projects/{PROJECT}/locations/{REGION}/connectors/{CONNECTOR}",
}
# Terraform resources of types not read into a Deployment, and why. (The media bucket is read
# but not compared: the runbook's gcloud commands make it. db_admin_iam_users stays empty:
# operators as IAM database users are a terraform-only setting.)
NOT_COMPARED = {
    "google_sql_database_instance.main": "made by the runbook's gcloud commands",
    "google_sql_database.main": "made by the runbook's gcloud commands",
    "google_secret_manager_secret.openai_api_key": "made by the runbook's gcloud commands",
    "google_storage_bucket_object.source": "the upload: compared as each function's source",
    "terraform_data.dead_letter_policy": "runs the script's dead-letters step: compared as its calls",
}


def _terraform(archive: Path, private: bool, workdir: Path) -> tuple[dict, Deployment]:
    variables: dict = {
        TERRAFORM_NAMES.get(key, key.replace("-", "_")): value for key, value in SETTINGS.items()
    }
    variables["cors_origins"] = ORIGINS  # a list in terraform, comma-separated for the script
    variables |= {"project_id": PROJECT, "region": REGION, "source_archive": str(archive)}
    if private:
        variables |= PRIVATE_IP
    resources = terraform_eval.evaluate(TERRAFORM_DIR, variables, workdir / "terraform")
    tf = deployment.from_terraform(resources)
    # The dead-letter step runs gcloud: read what it calls, as on the gcloud side.
    recorder = Recorder(workdir / "terraform-dead-letters")
    for step in resources["terraform_data.dead_letter_policy"].values():
        (provisioner,) = step["provisioner"]
        recorder.run(provisioner["command"], cwd=(TERRAFORM_DIR / provisioner["working_dir"]))
    return resources, from_gcloud(recorder.calls(), PROJECT, into=tf)


@pytest.fixture(scope="module", params=[False, True], ids=["public-ip", "private-ip"])
def both(request, archive: Path, deploys: Deploys, tmp_path_factory) -> tuple:
    """(terraform's deployment, gcloud's, terraform's resources, private IP or not)."""
    private = request.param
    resources, tf = _terraform(archive, private, tmp_path_factory.mktemp("parity"))
    gcloud = from_gcloud(deploys.calls(private, existing=False), PROJECT)
    return tf, gcloud, resources, private


def test_every_terraform_resource_is_compared_or_left_out_for_a_reason(both) -> None:
    _, _, resources, _ = both
    unread = {a for a in resources if a.split(".")[0] not in deployment.READ_TYPES}
    assert unread == set(NOT_COMPARED), "read a new resource type in tests/infra/deployment.py"


def test_the_same_apis_are_enabled(both) -> None:
    tf, gcloud, _, _ = both
    assert gcloud.apis == tf.apis
    assert {"iam.googleapis.com", "iamcredentials.googleapis.com"} <= gcloud.apis


def test_the_same_topics(both) -> None:
    tf, gcloud, _, _ = both
    assert gcloud.topics == tf.topics


def test_the_same_subscriptions_with_the_same_settings(both, m) -> None:
    """The dead-letter holds, and the triggers' subscriptions as the dead-letter step sets them."""
    tf, gcloud, _, _ = both
    assert sorted(gcloud.subscriptions) == sorted(tf.subscriptions)
    for name, settings in tf.subscriptions.items():
        assert gcloud.subscriptions[name] == settings, name
    holds = [s for name, s in gcloud.subscriptions.items() if name.endswith("-dead-hold")]
    assert len(holds) == len(m.dead_letter_topics)
    assert all(s["expiration"] == "never" for s in holds)


def test_every_dead_letter_topic_has_its_hold_and_its_triggers_policy(both, m) -> None:
    """Each manifest dead-letter topic (register-upload-dead included): the topic, its hold, and
    the policy on the subscription of the trigger that feeds it, on both paths."""
    tf, gcloud, _, _ = both
    hold = m.dead_letter_hold
    for d in (tf, gcloud):
        for f in [f for f in m.functions if f.dead_letter_topic]:
            topic = f"projects/{PROJECT}/topics/{f.dead_letter_topic}"
            assert f.dead_letter_topic in d.topics
            assert d.subscriptions[f"{f.dead_letter_topic}-hold"] == {
                "topic": topic,
                "ack_deadline_seconds": hold.ack_deadline_seconds,
                "message_retention_seconds": hold.message_retention_seconds,
                "expiration": "never",
            }
            (trigger_sub,) = [name for name in d.subscriptions if f"-{f.name}-" in name]
            policy = d.subscriptions[trigger_sub]
            assert policy["dead_letter_topic"] == topic, f.name
            assert policy["max_delivery_attempts"] == f.max_delivery_attempts, f.name
    assert "register-upload-dead" in {f.dead_letter_topic for f in m.functions}


def test_the_same_bucket_cors_for_the_configured_origins(both) -> None:
    tf, gcloud, _, _ = both
    assert gcloud.bucket_cors == tf.bucket_cors
    (rule,) = gcloud.bucket_cors[SETTINGS["bucket"]]
    assert rule["origin"] == ORIGINS
    assert {"GET", "PUT"} <= set(rule["method"])


def test_the_same_quarantine_lifecycle_on_the_media_bucket(both) -> None:
    tf, gcloud, _, _ = both
    bucket = SETTINGS["bucket"]
    assert gcloud.bucket_lifecycle[bucket] == tf.bucket_lifecycle[bucket] == [
        {
            "action": {"type": "Delete"},
            "condition": {"age": int(SETTINGS["quarantine-retention-days"]),
                          "matchesPrefix": ["quarantine/"]},
        }
    ]  # fmt: skip


def test_concurrency_cpu_threads_and_origins_follow_the_manifest(both, m) -> None:
    """Field by field equal, and equal to the manifest: the api serves 250 requests per
    instance on 250 threads and 1 vCPU; a function without `cpu` gets the platform's default."""
    tf, gcloud, _, _ = both
    for d in (tf, gcloud):
        for f in m.functions:
            settings = d.functions[f.name]
            assert (settings["concurrency"], settings["cpu"]) == (f.concurrency, f.cpu), f.name
            assert settings["environment"]["THREADS"] == str(f.concurrency), f.name
            assert settings["environment"]["CORS_ORIGINS"] == ",".join(ORIGINS), f.name
        assert (d.functions["api"]["concurrency"], d.functions["api"]["cpu"]) == (250, "1")


def test_pool_timeouts_and_model_limits_follow_the_manifest(both, m) -> None:
    """render-image waits 60 s for a pooled connection, the rest 10 s; every function knows the
    organisation's image limits (tests/unit/test_manifest.py sizes both)."""
    tf, gcloud, _, _ = both
    limits = m.model_limits
    for d in (tf, gcloud):
        for f in m.functions:
            environment = d.functions[f.name]["environment"]
            assert float(environment["DB_POOL_TIMEOUT_SECONDS"]) == f.pool_timeout_seconds, f.name
            assert environment["OPENAI_CONCURRENT_IMAGES"] == str(limits.concurrent_images)
            assert environment["OPENAI_IMAGES_PER_MINUTE"] == str(limits.images_per_minute)
        assert d.functions["render-image"]["environment"]["DB_POOL_TIMEOUT_SECONDS"] == "60"


def test_the_same_service_accounts(both) -> None:
    tf, gcloud, _, _ = both
    assert gcloud.service_accounts == tf.service_accounts


def test_the_same_role_bindings(both) -> None:
    tf, gcloud, _, _ = both
    assert sorted(gcloud.bindings - tf.bindings) == []
    assert sorted(tf.bindings - gcloud.bindings) == []


def test_the_same_functions_setting_by_setting(both) -> None:
    tf, gcloud, _, _ = both
    assert sorted(gcloud.functions) == sorted(tf.functions)
    for name, settings in tf.functions.items():
        for key, value in settings.items():
            assert gcloud.functions[name][key] == value, f"{name}: {key}"


def test_private_ip_routes_through_the_connector(both, m) -> None:
    """Every function but one with `vpc = false` (deliver-webhooks: the internet only)."""
    _, gcloud, _, private = both
    connector = f"projects/{PROJECT}/locations/{REGION}/connectors/{CONNECTOR}"
    for name, f in gcloud.functions.items():
        routed = private and m.function(name).vpc
        assert f["environment"]["DB_IP_TYPE"] == ("private" if private else "public")
        assert f["vpc_connector"] == (connector if routed else None), name
        assert f["vpc_egress"] == ("PRIVATE_RANGES_ONLY" if routed else None), name
    assert not m.function("deliver-webhooks").vpc


def test_the_same_schedules_sql_users_and_source_bucket(both) -> None:
    tf, gcloud, _, _ = both
    assert gcloud.schedules == tf.schedules
    assert gcloud.sql_users == tf.sql_users
    media = SETTINGS["bucket"]  # made by the runbook's commands, before the script
    assert gcloud.buckets == {name: b for name, b in tf.buckets.items() if name != media}


def test_a_rerun_brings_existing_resources_to_the_same_settings(both, deploys: Deploys) -> None:
    """Over a project where everything exists, updates replace creates and converge."""
    tf, _, _, private = both
    again = from_gcloud(deploys.calls(private, existing=True), PROJECT)
    assert again.topics == set(), "topics exist: nothing to create"
    # An update cannot move a subscription to another topic; everything else it sets.
    assert again.subscriptions == {
        name: {k: v for k, v in settings.items() if k != "topic"}
        for name, settings in tf.subscriptions.items()
    }
    assert again.service_accounts == tf.service_accounts
    assert again.bindings == tf.bindings
    assert again.schedules == tf.schedules
    assert again.functions == tf.functions
    assert again.bucket_cors == {b: rules for b, rules in tf.bucket_cors.items() if rules}
    assert again.bucket_lifecycle == {b: r for b, r in tf.bucket_lifecycle.items() if r}
