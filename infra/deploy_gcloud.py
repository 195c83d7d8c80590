"""Deploys every function of infra/functions.toml with gcloud: the alternative to terraform.

    python -m infra.deploy_gcloud --project P --cors-origins https://app.example [--dry-run]
    python -m infra.deploy_gcloud dead-letters --project P [--only NAME]

`deploy` (the default) makes sure the topics, dead-letter topics and their hold subscriptions,
the service accounts and their grants exist, sets the media bucket's CORS for the origins, uploads dist/source.zip as
gs://<project>-fn-source/source/<sha256>.zip (unless --source names another archive: that is a
rollback), deploys each function with `gcloud functions deploy --gen2`, sets the dead-letter
policy on each Pub/Sub trigger's subscription, and creates or updates the scheduler jobs.
The bucket, the Cloud SQL instance and the OpenAI secret come first (infra/RUNBOOK.md).
`--dry-run` prints the exact commands, one per line, and runs nothing.
Every step is idempotent: run it again after a change, or after a failure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from infra import cors, manifest
from infra.manifest import Function, Manifest

RUNTIME = "python311"
TRIGGER_ACCOUNT = "fn-event-trigger"
ARCHIVE = manifest.ROOT / "dist" / "source.zip"
ORIGIN = re.compile(r"^https?://[^/*?#]+$")  # exact: scheme://host[:port], as terraform checks


@dataclass(frozen=True)
class Target:
    project: str
    region: str
    bucket: str
    cors_origins: tuple[str, ...]
    instance_connection_name: str
    db_name: str
    db_ip_type: str
    source: str
    openai_secret_version: str = "latest"  # noqa: S105 (a version name, not a secret)
    auth_issuer: str = ""
    auth_audience: str = ""

    def sa_email(self, account_id: str) -> str:
        return f"{account_id}@{self.project}.iam.gserviceaccount.com"

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"


def _p(t: Target) -> list[str]:
    return [f"--project={t.project}"]


def _ensure(describe: list[str], create: list[str]) -> list[str]:
    """A command that creates a resource only when describing it fails."""
    return ["bash", "-c", f"{shlex.join(describe)} >/dev/null 2>&1 || {shlex.join(create)}"]


def env_vars(f: Function, t: Target, m: Manifest) -> dict[str, str]:
    """The environment of one function: shared/config.py's names, the same as terraform's."""
    return {
        "GCP_PROJECT": t.project,
        "BUCKET_NAME": t.bucket,
        "INSTANCE_CONNECTION_NAME": t.instance_connection_name,
        "DB_NAME": t.db_name,
        "DB_USER": t.sa_email(f.account_id).removesuffix(".gserviceaccount.com"),
        "DB_IAM_AUTH": "true",
        "DB_IP_TYPE": t.db_ip_type,
        "DB_POOL_SIZE": str(f.pool_size),
        "THREADS": str(f.concurrency),  # Cloud Functions: threads = concurrency for Python
        **{f"TOPIC_{key.upper()}": topic for key, topic in m.topics.items()},
        "CORS_ORIGINS": ",".join(t.cors_origins),
        "AUTH_ISSUER": t.auth_issuer,
        "AUTH_AUDIENCE": t.auth_audience,
    }


def deploy_command(f: Function, t: Target, m: Manifest) -> list[str]:
    env = env_vars(f, t, m)
    # "^;^" switches gcloud's list delimiter, so values may contain commas (gcloud topic escaping).
    cmd = [
        "gcloud",
        "functions",
        "deploy",
        f.name,
        "--gen2",
        *_p(t),
        f"--region={t.region}",
        f"--runtime={RUNTIME}",
        f"--source={t.source}",
        f"--entry-point={f.entry_point}",
        f"--service-account={t.sa_email(f.account_id)}",
        f"--timeout={f.timeout_seconds}s",
        f"--memory={f.memory}",
        f"--max-instances={f.max_instances}",
        f"--concurrency={f.concurrency}",
        *([f"--cpu={f.cpu}"] if f.cpu else []),
        "--set-env-vars=^;^" + ";".join(f"{k}={v}" for k, v in env.items()),
    ]
    if f.secrets:
        refs = ",".join(
            f"{name}={manifest.SECRETS[name]}:{t.openai_secret_version}" for name in f.secrets
        )
        cmd.append(f"--set-secrets={refs}")
    if f.trigger == "http":
        return [*cmd, "--trigger-http", "--allow-unauthenticated", "--ingress-settings=all"]
    cmd += [
        "--no-allow-unauthenticated",
        "--ingress-settings=internal-only",
        f"--trigger-location={t.region}",
        f"--trigger-service-account={t.sa_email(TRIGGER_ACCOUNT)}",
    ]
    if f.trigger == "gcs_finalize":
        cmd += [
            f"--trigger-event-filters=type={manifest.GCS_FINALIZED}",
            f"--trigger-event-filters=bucket={t.bucket}",
        ]
    else:
        cmd.append(f"--trigger-topic={f.topic}")
    # Event triggers made through the Cloud Functions v2 API do not retry unless told.
    if f.retry:
        cmd.append("--retry")
    return cmd


def _pubsub_agent(t: Target) -> str:
    """Shell text: the Pub/Sub service agent, found from the project number at run time."""
    number = shlex.join(["gcloud", "projects", "describe", t.project])
    return f"\"serviceAccount:service-$({number} --format='value(projectNumber)')@gcp-sa-pubsub.iam.gserviceaccount.com\""


def dead_letter_command(f: Function, t: Target) -> list[str]:
    """Sets the dead-letter policy on the subscription Eventarc made for the function's trigger.

    The functions API has no dead-letter setting: the trigger's push subscription is created
    and named by Eventarc, so it is looked up (function -> trigger -> subscription) and updated.
    """
    p = shlex.join(_p(t))
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
        f'gcloud pubsub subscriptions add-iam-policy-binding "$SUB" --member={_pubsub_agent(t)} '
        f"--role=roles/pubsub.subscriber --quiet {p} >/dev/null"
    )
    return ["bash", "-c", script]


def bootstrap_commands(m: Manifest, t: Target) -> list[list[str]]:
    p = _p(t)
    cmds = []
    for topic in [*m.topics.values(), *m.dead_letter_topics]:
        describe = ["gcloud", "pubsub", "topics", "describe", topic, *p]
        cmds.append(_ensure(describe, ["gcloud", "pubsub", "topics", "create", topic, *p]))
    for dlq in m.dead_letter_topics:
        hold = f"{dlq}-hold"
        describe = ["gcloud", "pubsub", "subscriptions", "describe", hold, *p]
        create = ["gcloud", "pubsub", "subscriptions", "create", hold, f"--topic={dlq}", *p]
        cmds.append(_ensure(describe, [*create, "--message-retention-duration=7d"]))
    source_bucket = t.source.split("/")[2]
    describe = ["gcloud", "storage", "buckets", "describe", f"gs://{source_bucket}", *p]
    create = ["gcloud", "storage", "buckets", "create", f"gs://{source_bucket}", *p]
    flags = [
        f"--location={t.region}",
        "--uniform-bucket-level-access",
        "--public-access-prevention",
    ]
    cmds.append(_ensure(describe, [*create, *flags]))
    for account_id in [f.account_id for f in m.functions] + [TRIGGER_ACCOUNT]:
        describe = ["gcloud", "iam", "service-accounts", "describe", t.sa_email(account_id), *p]
        cmds.append(
            _ensure(describe, ["gcloud", "iam", "service-accounts", "create", account_id, *p])
        )
    return cmds


def grant_commands(m: Manifest, t: Target) -> list[list[str]]:
    q = [*_p(t), "--quiet"]
    cmds = []

    def project_role(member: str, role: str) -> None:
        cmds.append(
            [
                "gcloud",
                "projects",
                "add-iam-policy-binding",
                t.project,
                f"--member={member}",
                f"--role={role}",
                "--quiet",
                "--condition=None",
            ]
        )

    for f in m.functions:
        member = f"serviceAccount:{t.sa_email(f.account_id)}"
        cmds.append(
            [
                "gcloud",
                "storage",
                "buckets",
                "add-iam-policy-binding",
                f"gs://{t.bucket}",
                f"--member={member}",
                "--role=roles/storage.objectAdmin",
                *_p(t),
            ]
        )
        for topic in f.publishes:
            cmds.append(
                [
                    "gcloud",
                    "pubsub",
                    "topics",
                    "add-iam-policy-binding",
                    topic,
                    f"--member={member}",
                    "--role=roles/pubsub.publisher",
                    *q,
                ]
            )
        for name in f.secrets:
            cmds.append(
                [
                    "gcloud",
                    "secrets",
                    "add-iam-policy-binding",
                    manifest.SECRETS[name],
                    f"--member={member}",
                    "--role=roles/secretmanager.secretAccessor",
                    *q,
                ]
            )
        if f.signs_urls:
            cmds.append(
                [
                    "gcloud",
                    "iam",
                    "service-accounts",
                    "add-iam-policy-binding",
                    t.sa_email(f.account_id),
                    f"--member={member}",
                    "--role=roles/iam.serviceAccountTokenCreator",
                    *q,
                ]
            )
        project_role(member, "roles/cloudsql.client")
        project_role(member, "roles/cloudsql.instanceUser")
        instance = t.instance_connection_name.split(":")[-1]
        db_user = t.sa_email(f.account_id).removesuffix(".gserviceaccount.com")
        describe = [
            "gcloud",
            "sql",
            "users",
            "list",
            f"--instance={instance}",
            *_p(t),
            f"--filter=name={db_user}",
            "--format=value(name)",
        ]
        create = [
            "gcloud",
            "sql",
            "users",
            "create",
            db_user,
            f"--instance={instance}",
            "--type=cloud_iam_service_account",
            *_p(t),
        ]
        cmds.append(["bash", "-c", f'[ -n "$({shlex.join(describe)})" ] || {shlex.join(create)}'])
    trigger = f"serviceAccount:{t.sa_email(TRIGGER_ACCOUNT)}"
    project_role(trigger, "roles/eventarc.eventReceiver")
    # Eventarc's Cloud Storage triggers are fed by the Cloud Storage service agent via Pub/Sub.
    gcs_agent = shlex.join(["gcloud", "storage", "service-agent", *_p(t)])
    grant = shlex.join(["gcloud", "projects", "add-iam-policy-binding", t.project])
    cmds.append(
        [
            "bash",
            "-c",
            f'{grant} --member="serviceAccount:$({gcs_agent})" '
            "--role=roles/pubsub.publisher --quiet --condition=None >/dev/null",
        ]
    )
    # Pub/Sub forwards poison messages as its service agent, and mints the trigger's push token.
    agent = _pubsub_agent(t)
    for dlq in m.dead_letter_topics:
        grant = shlex.join(["gcloud", "pubsub", "topics", "add-iam-policy-binding", dlq, *q])
        cmds.append(["bash", "-c", f"{grant} --member={agent} --role=roles/pubsub.publisher"])
    grant = shlex.join(
        [
            "gcloud",
            "iam",
            "service-accounts",
            "add-iam-policy-binding",
            t.sa_email(TRIGGER_ACCOUNT),
            *q,
        ]
    )
    cmds.append(
        ["bash", "-c", f"{grant} --member={agent} --role=roles/iam.serviceAccountTokenCreator"]
    )
    return cmds


def invoker_commands(m: Manifest, t: Target) -> list[list[str]]:
    """Event functions answer only the trigger account (--no-allow-unauthenticated drops others)."""
    return [
        [
            "gcloud",
            "functions",
            "add-invoker-policy-binding",
            f.name,
            f"--region={t.region}",
            f"--member=serviceAccount:{t.sa_email(TRIGGER_ACCOUNT)}",
            *_p(t),
        ]
        for f in m.functions
        if f.trigger != "http"
    ]


def scheduler_commands(m: Manifest, t: Target) -> list[list[str]]:
    cmds = []
    for f in m.functions:
        for s in f.schedules:
            args = [
                s.name,
                f"--location={t.region}",
                f"--schedule={s.cron}",
                "--time-zone=Etc/UTC",
                f"--topic={f.topic}",
                f"--message-body={s.body}",
                *_p(t),
            ]
            create = ["gcloud", "scheduler", "jobs", "create", "pubsub", *args]
            update = ["gcloud", "scheduler", "jobs", "update", "pubsub", *args]
            cmds.append(["bash", "-c", f"{shlex.join(create)} 2>/dev/null || {shlex.join(update)}"])
    return cmds


def bucket_cors(t: Target) -> list[dict[str, object]]:
    """The media bucket's CORS configuration (the JSON that `--cors-file` takes): infra/cors.py's
    rule, for the deployment's origins."""
    return cors.bucket_cors(t.cors_origins)


def bucket_cors_command(t: Target) -> list[str]:
    """Sets the bucket's CORS (the whole configuration: running it again changes nothing)."""
    update = shlex.join(["gcloud", "storage", "buckets", "update", f"gs://{t.bucket}", *_p(t)])
    rules = shlex.quote(json.dumps(bucket_cors(t)))
    return ["bash", "-c", f"{update} --cors-file=<(printf %s {rules})"]


def upload_command(t: Target, archive: Path) -> list[str]:
    return ["gcloud", "storage", "cp", "--no-clobber", str(archive), t.source, *_p(t)]


def plan(m: Manifest, t: Target, archive: Path | None) -> list[list[str]]:
    """Every command of a full deploy, in order."""
    cmds = [*bootstrap_commands(m, t), bucket_cors_command(t), *grant_commands(m, t)]
    if archive is not None:
        cmds.append(upload_command(t, archive))
    cmds += [deploy_command(f, t, m) for f in m.functions]
    cmds += invoker_commands(m, t)
    cmds += [dead_letter_command(f, t) for f in m.functions if f.dead_letter_topic]
    return cmds + scheduler_commands(m, t)


def archive_object(project: str, archive: Path) -> str:
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    return f"gs://{project}-fn-source/source/{digest}.zip"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", nargs="?", choices=["deploy", "dead-letters"], default="deploy")
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", default="us-central1")
    parser.add_argument("--bucket", default="video-gen-image-bucket")
    parser.add_argument(
        "--cors-origins",
        help="comma-separated origins browsers call from, e.g. https://app.example.com "
        "(the api's CORS_ORIGINS and the bucket's CORS; required for deploy)",
    )
    parser.add_argument("--db-instance", default="imagegen-pg")
    parser.add_argument("--db-name", default="imagegen")
    parser.add_argument("--db-ip-type", choices=["public", "private"], default="public")
    parser.add_argument("--openai-secret-version", default="latest")
    parser.add_argument("--auth-issuer", default="")
    parser.add_argument("--auth-audience", default="")
    parser.add_argument(
        "--source",
        help="gs://.../source/<sha256>.zip to deploy (a rollback); default: upload dist/source.zip",
    )
    parser.add_argument("--only", action="append", help="limit to these functions (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    args.cors_origins = tuple(o.strip() for o in (args.cors_origins or "").split(",") if o.strip())
    if args.step == "deploy" and not args.cors_origins:
        parser.error("--cors-origins is required to deploy")
    wrong = [o for o in args.cors_origins if not ORIGIN.match(o)]
    if wrong:
        parser.error(f"--cors-origins takes exact origins (scheme://host[:port]), not {wrong}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    m = manifest.load()
    if args.only:
        unknown = set(args.only) - {f.name for f in m.functions}
        if unknown:
            print(f"unknown functions: {sorted(unknown)}", file=sys.stderr)
            return 2
        m = Manifest(
            functions=tuple(f for f in m.functions if f.name in args.only),
            topics=m.topics,
            max_connections=m.max_connections,
            reserved_connections=m.reserved_connections,
        )
    archive = None
    source = args.source
    if source is None and args.step == "deploy":
        if not ARCHIVE.exists():
            print(f"{ARCHIVE} is missing: run `make package` first", file=sys.stderr)
            return 2
        archive, source = ARCHIVE, archive_object(args.project, ARCHIVE)
    t = Target(
        project=args.project,
        region=args.region,
        bucket=args.bucket,
        cors_origins=args.cors_origins,
        instance_connection_name=f"{args.project}:{args.region}:{args.db_instance}",
        db_name=args.db_name,
        db_ip_type=args.db_ip_type,
        source=source or "",
        openai_secret_version=args.openai_secret_version,
        auth_issuer=args.auth_issuer,
        auth_audience=args.auth_audience,
    )
    if args.step == "dead-letters":
        cmds = [dead_letter_command(f, t) for f in m.functions if f.dead_letter_topic]
    else:
        cmds = plan(m, t, archive)
    for cmd in cmds:
        print(shlex.join(cmd), flush=True)
        if not args.dry_run:
            subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
