"""Topics, the dead-letter topics' hold subscriptions, dead-letter policies and scheduler jobs."""

from __future__ import annotations

import shlex

from infra.gcloud.shell import ensure, pubsub_agent, upsert
from infra.gcloud.target import Target
from infra.manifest import Function, Manifest


def topic_commands(m: Manifest, t: Target) -> list[list[str]]:
    cmds = []
    for topic in m.all_topics():
        describe = ["gcloud", "pubsub", "topics", "describe", topic, t.project_flag]
        cmds.append(
            ensure(describe, ["gcloud", "pubsub", "topics", "create", topic, t.project_flag])
        )
    return cmds


def hold_subscription_commands(m: Manifest, t: Target) -> list[list[str]]:
    """A pull subscription per dead-letter topic that never expires, as terraform's does."""
    hold = m.dead_letter_hold
    settings = [
        f"--message-retention-duration={hold.message_retention_seconds}s",
        f"--ack-deadline={hold.ack_deadline_seconds}",
        "--expiration-period=never",
        t.project_flag,
    ]
    cmds = []
    for dlq in m.dead_letter_topics:
        name = f"{dlq}-hold"
        subscriptions = ["gcloud", "pubsub", "subscriptions"]
        cmds.append(
            upsert(
                [*subscriptions, "describe", name, t.project_flag],
                [*subscriptions, "create", name, f"--topic={t.topic_path(dlq)}", *settings],
                [*subscriptions, "update", name, *settings],
            )
        )
    return cmds


def dead_letter_command(f: Function, t: Target) -> list[str]:
    """Sets the dead-letter policy on the subscription Eventarc made for the function's trigger.

    The functions API has no dead-letter setting: the trigger's push subscription is created
    and named by Eventarc, so it is looked up (function -> trigger -> subscription) and updated.
    """
    p = t.project_flag
    describe_fn = shlex.join(
        [
            *("gcloud", "functions", "describe", f.name, "--gen2", f"--region={t.region}"),
            "--format=value(eventTrigger.trigger)",
        ]
    )
    describe_trigger = shlex.join(
        [f"--location={t.region}", "--format=value(transport.pubsub.subscription)"]
    )
    update = shlex.join(
        [
            f"--dead-letter-topic={t.topic_path(f.dead_letter_topic or '')}",
            f"--max-delivery-attempts={f.max_delivery_attempts}",
        ]
    )
    script = (
        f"set -euo pipefail; TRIGGER=$({describe_fn} {p}); "
        f'SUB=$(gcloud eventarc triggers describe "${{TRIGGER##*/}}" {describe_trigger} {p}); '
        f'gcloud pubsub subscriptions update "$SUB" {update} {p}; '
        f'gcloud pubsub subscriptions add-iam-policy-binding "$SUB" '
        f"--member={pubsub_agent(t.project)} --role=roles/pubsub.subscriber --quiet {p} >/dev/null"
    )
    return ["bash", "-c", script]


def scheduler_commands(m: Manifest, t: Target) -> list[list[str]]:
    """Jobs that publish the manifest's bodies to the function's topic, named in full."""
    cmds = []
    for f in m.functions:
        for s in f.schedules:
            jobs = ["gcloud", "scheduler", "jobs"]
            where = [s.name, f"--location={t.region}"]
            settings = [
                f"--schedule={s.cron}",
                "--time-zone=Etc/UTC",
                f"--topic={t.topic_path(f.topic or '')}",
                f"--message-body={s.body}",
                t.project_flag,
            ]
            cmds.append(
                upsert(
                    [*jobs, "describe", *where, t.project_flag],
                    [*jobs, "create", "pubsub", *where, *settings],
                    [*jobs, "update", "pubsub", *where, *settings],
                )
            )
    return cmds
