"""One vocabulary for what a deploy creates, and its reader of terraform's evaluated resources.

The readers (this one, and deployment_gcloud.py for gcloud calls) name things as the Google APIs
do (full resource names, enum values, seconds), so two deployments compare with ==.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class Deployment:
    apis: set[str] = field(default_factory=set)
    topics: set[str] = field(default_factory=set)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    service_accounts: dict[str, str] = field(default_factory=dict)  # email: display name
    bindings: set[tuple[str, str, str]] = field(default_factory=set)  # (resource, role, member)
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    sql_users: dict[str, dict[str, str]] = field(default_factory=dict)
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    bucket_cors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # as the JSON API
    bucket_lifecycle: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # its rules


# Terraform resource types from_terraform reads (terraform_data runs gcloud: its calls are read).
READ_TYPES = {
    "google_project_service", "google_pubsub_topic", "google_pubsub_subscription",
    "google_service_account", "google_storage_bucket_iam_member", "google_pubsub_topic_iam_member",
    "google_secret_manager_secret_iam_member", "google_service_account_iam_member",
    "google_project_iam_member", "google_cloud_run_v2_service_iam_member",
    "google_cloudfunctions2_function", "google_cloud_scheduler_job", "google_sql_user",
    "google_storage_bucket",
}  # fmt: skip
# What Pub/Sub gives a subscription created without these settings.
SUBSCRIPTION_DEFAULTS = {
    "ack_deadline_seconds": 10,
    "message_retention_seconds": 7 * 86400,
    "expiration": "default",
}


def seconds(duration: str) -> int:
    """gcloud's and terraform's durations: 60, 60s, 10m, 7d."""
    match = re.fullmatch(r"(\d+)([smhd]?)", duration)
    assert match, f"not a duration: {duration!r}"
    return int(match.group(1)) * SECONDS[match.group(2) or "s"]


# ---- terraform ---------------------------------------------------------------------------


def _one(blocks: list[dict]) -> dict:
    assert len(blocks) == 1, blocks
    return blocks[0]


def _tf_function(f: dict) -> dict[str, Any]:
    build, service = _one(f["build_config"]), _one(f["service_config"])
    storage = _one(_one(build["source"])["storage_source"])
    secrets = {
        s["key"]: f"projects/{s['project_id']}/secrets/{s['secret']}/versions/{s['version']}"
        for s in service["secret_environment_variables"]
    }
    trigger = None
    if f["event_trigger"]:
        t = _one(f["event_trigger"])
        trigger = {
            "region": t["trigger_region"],
            "event_type": t["event_type"],
            "topic": t["pubsub_topic"],
            "filters": {e["attribute"]: e["value"] for e in t["event_filters"]},
            "retry_policy": t["retry_policy"],
            "service_account": t["service_account_email"],
        }
    return {
        "region": f["location"],
        "runtime": build["runtime"],
        "entry_point": build["entry_point"],
        "source": f"gs://{storage['bucket']}/{storage['object']}",
        "service_account": service["service_account_email"],
        "timeout_seconds": service["timeout_seconds"],
        "memory": service["available_memory"],
        "max_instances": service["max_instance_count"],
        "concurrency": service["max_instance_request_concurrency"],
        "cpu": service["available_cpu"],
        "ingress": service["ingress_settings"],
        "all_traffic_on_latest_revision": service["all_traffic_on_latest_revision"],
        "vpc_connector": service["vpc_connector"],
        "vpc_egress": service["vpc_connector_egress_settings"],
        "environment": service["environment_variables"],
        "secrets": secrets,
        "trigger": trigger,
    }


def from_terraform(resources: dict[str, dict[str, dict]]) -> Deployment:
    """Reads terraform_eval.evaluate's result. The dead-letter policies are set by a command
    (terraform_data): read its gcloud calls into the same Deployment."""
    d = Deployment()

    def each(kind: str) -> list[dict]:
        return [i for address, r in resources.items() if address.split(".")[0] == kind
                for i in r.values()]  # fmt: skip

    d.apis = {s["service"] for s in each("google_project_service")}
    d.topics = {t["name"] for t in each("google_pubsub_topic")}
    for s in each("google_pubsub_subscription"):
        policy = s.get("expiration_policy")
        ttl = _one(policy)["ttl"] if policy else None
        sub = d.subscriptions[s["name"]] = {**SUBSCRIPTION_DEFAULTS, "topic": s["topic"]}
        if "ack_deadline_seconds" in s:
            sub["ack_deadline_seconds"] = s["ack_deadline_seconds"]
        if "message_retention_duration" in s:
            sub["message_retention_seconds"] = seconds(s["message_retention_duration"])
        if ttl is not None:
            sub["expiration"] = "never" if ttl == "" else seconds(ttl)
    d.service_accounts = {a["email"]: a["display_name"] for a in each("google_service_account")}
    for b in each("google_storage_bucket_iam_member"):
        d.bindings.add((f"buckets/{b['bucket']}", b["role"], b["member"]))
    for b in each("google_pubsub_topic_iam_member"):
        d.bindings.add((b["topic"], b["role"], b["member"]))
    for b in each("google_secret_manager_secret_iam_member"):
        d.bindings.add((b["secret_id"], b["role"], b["member"]))
    for b in each("google_service_account_iam_member"):
        d.bindings.add((b["service_account_id"], b["role"], b["member"]))
    for b in each("google_project_iam_member"):
        d.bindings.add((f"projects/{b['project']}", b["role"], b["member"]))
    for b in each("google_cloud_run_v2_service_iam_member"):
        d.bindings.add((f"run/{b['location']}/{b['name']}", b["role"], b["member"]))
    d.functions = {f["name"]: _tf_function(f) for f in each("google_cloudfunctions2_function")}
    for job in each("google_cloud_scheduler_job"):
        target = _one(job["pubsub_target"])
        d.schedules[job["name"]] = {
            "region": job["region"],
            "schedule": job["schedule"],
            "time_zone": job["time_zone"],
            "topic": target["topic_name"],
            "body": base64.b64decode(target["data"]).decode(),
        }
    for u in each("google_sql_user"):
        d.sql_users[u["name"]] = {"instance": u["instance"], "type": u["type"]}
    for b in each("google_storage_bucket"):
        d.buckets[b["name"]] = {
            "location": b["location"].lower(),
            "uniform_bucket_level_access": b["uniform_bucket_level_access"],
            "public_access_prevention": b["public_access_prevention"],
        }
        d.bucket_cors[b["name"]] = [
            {
                "origin": c["origin"],
                "method": c["method"],
                "responseHeader": c["response_header"],
                "maxAgeSeconds": c["max_age_seconds"],
            }
            for c in b.get("cors", [])
        ]
        d.bucket_lifecycle[b["name"]] = [
            {
                "action": {"type": _one(rule["action"])["type"]},
                "condition": {
                    "age": _one(rule["condition"])["age"],
                    "matchesPrefix": _one(rule["condition"])["matches_prefix"],
                },
            }
            for rule in b.get("lifecycle_rule", [])
        ]
    return d
