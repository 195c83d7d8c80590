"""Reads gcloud calls into a Deployment (deployment.py), as the Google APIs would receive them.

A call it does not know fails the reading: a new kind of command is described here before it
can pass.
"""

from __future__ import annotations

import json
from pathlib import Path

from infra import manifest
from tests.infra.deployment import SUBSCRIPTION_DEFAULTS, Deployment, seconds

INGRESS = {"all": "ALLOW_ALL", "internal-only": "ALLOW_INTERNAL_ONLY"}
EGRESS = {"private-ranges-only": "PRIVATE_RANGES_ONLY", "all": "ALL_TRAFFIC"}
# Calls that only read: the lookups inside the deploy's scripts.
READS = {"describe", "list", "service-agent"}
# The one bucket update the deploy makes: the media bucket's CORS and lifecycle, each whole.
BUCKET_UPDATE = {"project", "cors-file", "lifecycle-file"}


def _split(argv: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(positional words, {flag: [values]}); a flag without a value has ""."""
    words, flags = [], {}
    for arg in argv[1:]:
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            flags.setdefault(name, []).append(value)
        else:
            words.append(arg)
    return words, flags


class _Reader:
    def __init__(self, project: str, into: Deployment) -> None:
        self.project = project
        self.d = into

    def topic(self, name: str) -> str:
        return name if name.startswith("projects/") else f"projects/{self.project}/topics/{name}"

    def resource(self, group: list[str], name: str, flags: dict[str, list[str]]) -> str:
        p = self.project
        paths = {
            ("storage", "buckets"): lambda: f"buckets/{name.removeprefix('gs://')}",
            ("pubsub", "topics"): lambda: self.topic(name),
            ("pubsub", "subscriptions"): lambda: name,
            ("secrets",): lambda: f"projects/{p}/secrets/{name}",
            ("iam", "service-accounts"): lambda: f"projects/{p}/serviceAccounts/{name}",
            ("projects",): lambda: f"projects/{name}",
            ("functions",): lambda: f"run/{flags['region'][-1]}/{name}",
        }
        return paths[tuple(group)]()

    def subscription(self, verb: str, name: str, flags: dict[str, list[str]]) -> None:
        new = SUBSCRIPTION_DEFAULTS if verb == "create" else {}
        sub = self.d.subscriptions.setdefault(name, dict(new))
        if "topic" in flags:
            sub["topic"] = self.topic(flags["topic"][-1])
        if "ack-deadline" in flags:
            sub["ack_deadline_seconds"] = int(flags["ack-deadline"][-1])
        if "message-retention-duration" in flags:
            sub["message_retention_seconds"] = seconds(flags["message-retention-duration"][-1])
        if "expiration-period" in flags:
            period = flags["expiration-period"][-1]
            sub["expiration"] = period if period == "never" else seconds(period)
        if "dead-letter-topic" in flags:
            sub["dead_letter_topic"] = self.topic(flags["dead-letter-topic"][-1])
            sub["max_delivery_attempts"] = int(flags["max-delivery-attempts"][-1])

    def function(self, name: str, flags: dict[str, list[str]]) -> None:
        def one(flag: str) -> str:
            (value,) = flags[flag]
            return value

        env = one("set-env-vars")
        assert env.startswith("^;^"), "values may hold commas: the env list needs its own delimiter"
        secrets = {}
        for ref in flags.get("set-secrets", [""])[0].split(","):
            if ref:
                key, _, secret = ref.partition("=")
                secret_id, _, version = secret.partition(":")
                secrets[key] = f"projects/{self.project}/secrets/{secret_id}/versions/{version}"
        trigger = None
        if "trigger-http" not in flags:
            filters = dict(f.split("=", 1) for f in flags.get("trigger-event-filters", []))
            event_type = filters.pop("type", manifest.PUBSUB_PUBLISHED)
            topic = flags.get("trigger-topic")
            retry = "retry" in flags and "no-retry" not in flags
            trigger = {
                "region": one("trigger-location"),
                "event_type": event_type,
                "topic": self.topic(topic[0]) if topic else None,
                "filters": filters,
                "retry_policy": "RETRY_POLICY_RETRY" if retry else "RETRY_POLICY_DO_NOT_RETRY",
                "service_account": one("trigger-service-account"),
            }
        if "allow-unauthenticated" in flags:
            self.d.bindings.add((f"run/{one('region')}/{name}", "roles/run.invoker", "allUsers"))
        connector = flags.get("vpc-connector", [None])[0]
        egress = flags.get("egress-settings", [None])[0]
        self.d.functions[name] = {
            "region": one("region"),
            "runtime": one("runtime"),
            "entry_point": one("entry-point"),
            "source": one("source"),
            "service_account": one("service-account"),
            "timeout_seconds": seconds(one("timeout")),
            "memory": one("memory"),
            "max_instances": int(one("max-instances")),
            "concurrency": int(one("concurrency")),
            "cpu": flags.get("cpu", [None])[0],
            "ingress": INGRESS[one("ingress-settings")],
            "all_traffic_on_latest_revision": "serve-all-traffic-latest-revision" in flags,
            "vpc_connector": connector,
            "vpc_egress": EGRESS[egress] if egress else None,
            "environment": dict(pair.split("=", 1) for pair in env[3:].split(";")),
            "secrets": secrets,
            "trigger": trigger,
        }

    def read(self, argv: list[str]) -> None:
        words, flags = _split(argv)
        d = self.d
        if READS & set(words) or words[:2] == ["projects", "describe"]:
            return
        if words[:2] == ["services", "enable"]:
            d.apis |= set(words[2:])
        elif words[:3] == ["pubsub", "topics", "create"]:
            d.topics.add(words[3])
        elif words[:2] == ["pubsub", "subscriptions"] and words[2] in ("create", "update"):
            self.subscription(words[2], words[3], flags)
        elif words[:3] == ["iam", "service-accounts", "create"]:
            email = f"{words[3]}@{self.project}.iam.gserviceaccount.com"
            d.service_accounts[email] = flags["display-name"][-1]
        elif words[:3] == ["iam", "service-accounts", "update"]:
            d.service_accounts[words[3]] = flags["display-name"][-1]
        elif "add-iam-policy-binding" in words:
            at = words.index("add-iam-policy-binding")
            resource = self.resource(words[:at], words[at + 1], flags)
            d.bindings.add((resource, flags["role"][-1], flags["member"][-1]))
        elif words[:2] == ["functions", "add-invoker-policy-binding"]:
            resource = self.resource(["functions"], words[2], flags)
            d.bindings.add((resource, "roles/run.invoker", flags["member"][-1]))
        elif words[:2] == ["functions", "deploy"]:
            self.function(words[2], flags)
        elif words[:2] == ["scheduler", "jobs"] and words[2:4] in (["create", "pubsub"],
                                                                   ["update", "pubsub"]):  # fmt: skip
            d.schedules[words[4]] = {
                "region": flags["location"][-1],
                "schedule": flags["schedule"][-1],
                "time_zone": flags["time-zone"][-1],
                "topic": self.topic(flags["topic"][-1]),
                "body": flags["message-body"][-1],
            }
        elif words[:3] == ["sql", "users", "create"]:
            d.sql_users[words[3]] = {
                "instance": flags["instance"][-1],
                "type": flags["type"][-1].upper(),
            }
        elif words[:3] == ["storage", "buckets", "create"]:
            d.buckets[words[3].removeprefix("gs://")] = {
                "location": flags["location"][-1].lower(),
                "uniform_bucket_level_access": "uniform-bucket-level-access" in flags,
                "public_access_prevention": "enforced" if "public-access-prevention" in flags
                else "inherited",
            }  # fmt: skip
            d.bucket_cors.setdefault(words[3].removeprefix("gs://"), [])
            d.bucket_lifecycle.setdefault(words[3].removeprefix("gs://"), [])
        elif words[:3] == ["storage", "buckets", "update"] and set(flags) == BUCKET_UPDATE:
            # The recorder keeps the files (fake_gcloud.py); gcloud sends them as the bucket's.
            bucket = words[3].removeprefix("gs://")
            d.bucket_cors[bucket] = json.loads(Path(flags["cors-file"][-1]).read_text())
            lifecycle = json.loads(Path(flags["lifecycle-file"][-1]).read_text())
            d.bucket_lifecycle[bucket] = lifecycle["rule"]
        else:
            raise AssertionError(f"tests/infra/deployment.py does not know this call: {argv}")


def from_gcloud(calls: list[list[str]], project: str, into: Deployment | None = None) -> Deployment:
    """Reads gcloud calls, into a Deployment of its own or one read from terraform."""
    reader = _Reader(project, into or Deployment())
    for argv in calls:
        reader.read(argv)
    return reader.d
