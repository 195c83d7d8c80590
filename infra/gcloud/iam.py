"""Identities and permissions: one service account per function, exactly the manifest's grants,
the trigger account, the Google service agents' roles and the IAM database users."""

from __future__ import annotations

import shlex

from infra import manifest
from infra.gcloud.shell import pubsub_agent, upsert
from infra.gcloud.target import TRIGGER_ACCOUNT, Target
from infra.manifest import Manifest

TRIGGER_DISPLAY_NAME = "Eventarc triggers of the Cloud Functions"
SQL_ROLES = ("roles/cloudsql.client", "roles/cloudsql.instanceUser")


def service_account_commands(m: Manifest, t: Target) -> list[list[str]]:
    accounts = {f.account_id: f"Cloud Function {f.name}" for f in m.functions}
    accounts[TRIGGER_ACCOUNT] = TRIGGER_DISPLAY_NAME
    cmds = []
    for account_id, display_name in accounts.items():
        accounts_cmd = ["gcloud", "iam", "service-accounts"]
        email = t.sa_email(account_id)
        name = f"--display-name={display_name}"
        cmds.append(
            upsert(
                [*accounts_cmd, "describe", email, t.project_flag],
                [*accounts_cmd, "create", account_id, name, t.project_flag],
                [*accounts_cmd, "update", email, name, t.project_flag],
            )
        )
    return cmds


def _binding(resource: list[str], role: str, t: Target) -> list[str]:
    """`gcloud <group> add-iam-policy-binding <name>` without its member: adds one, keeps the rest."""
    *group, name = resource
    return ["gcloud", *group, "add-iam-policy-binding", name, f"--role={role}", "--quiet",
            t.project_flag]  # fmt: skip


def _project_binding(role: str, t: Target) -> list[str]:
    # --condition=None: without it gcloud asks when the project's policy has conditions.
    return ["gcloud", "projects", "add-iam-policy-binding", t.project, f"--role={role}",
            "--condition=None", "--quiet"]  # fmt: skip


def _grant(binding: list[str], member: str) -> list[str]:
    return [*binding, f"--member={member}"]


def _grant_in_shell(binding: list[str], member: str) -> list[str]:
    """A grant to a member that the shell finds at run time (a Google service agent)."""
    return ["bash", "-c", f"{shlex.join(binding)} --member={member} >/dev/null"]


def function_grant_commands(m: Manifest, t: Target) -> list[list[str]]:
    """What each function's own account may do, from the manifest and nothing more."""
    cmds = []
    for f in m.functions:
        member = f"serviceAccount:{t.sa_email(f.account_id)}"
        bucket = ["storage", "buckets", f"gs://{t.bucket}"]
        cmds.append(_grant(_binding(bucket, f.bucket_role, t), member))
        for topic in f.publishes:
            topic_resource = ["pubsub", "topics", t.topic_path(topic)]
            cmds.append(_grant(_binding(topic_resource, "roles/pubsub.publisher", t), member))
        for name in f.secrets:
            secret = ["secrets", manifest.SECRETS[name]]
            cmds.append(_grant(_binding(secret, "roles/secretmanager.secretAccessor", t), member))
        if f.signs_urls:
            itself = ["iam", "service-accounts", t.sa_email(f.account_id)]
            role = "roles/iam.serviceAccountTokenCreator"
            cmds.append(_grant(_binding(itself, role, t), member))
        cmds += [_grant(_project_binding(role, t), member) for role in SQL_ROLES]
    return cmds


def sql_user_commands(m: Manifest, t: Target) -> list[list[str]]:
    """An IAM database user per function account (it owns nothing until the migration grants)."""
    cmds = []
    for f in m.functions:
        users = ["gcloud", "sql", "users"]
        db_user = t.db_user(f.account_id)
        where = [f"--instance={t.db_instance}", t.project_flag]
        found = [*users, "list", *where, f"--filter=name={db_user}", "--format=value(name)"]
        create = [*users, "create", db_user, *where, "--type=cloud_iam_service_account"]
        cmds.append(["bash", "-c", f'[ -n "$({shlex.join(found)})" ] || {shlex.join(create)}'])
    return cmds


def platform_grant_commands(m: Manifest, t: Target) -> list[list[str]]:
    """Roles of the trigger account and of the Google service agents behind the triggers."""
    trigger = f"serviceAccount:{t.sa_email(TRIGGER_ACCOUNT)}"
    cmds = [_grant(_project_binding("roles/eventarc.eventReceiver", t), trigger)]
    # Eventarc's Cloud Storage triggers are fed by the Cloud Storage service agent via Pub/Sub.
    gcs_agent = (
        f'"serviceAccount:$({shlex.join(["gcloud", "storage", "service-agent", t.project_flag])})"'
    )
    cmds.append(_grant_in_shell(_project_binding("roles/pubsub.publisher", t), gcs_agent))
    # Pub/Sub forwards poison messages as its service agent, and mints the trigger's push token.
    agent = pubsub_agent(t.project)
    for dlq in m.dead_letter_topics:
        topic = ["pubsub", "topics", t.topic_path(dlq)]
        cmds.append(_grant_in_shell(_binding(topic, "roles/pubsub.publisher", t), agent))
    account = ["iam", "service-accounts", t.sa_email(TRIGGER_ACCOUNT)]
    role = "roles/iam.serviceAccountTokenCreator"
    cmds.append(_grant_in_shell(_binding(account, role, t), agent))
    return cmds
