"""Deploys every function of infra/functions.toml with gcloud: the alternative to terraform.

    python -m infra.deploy_gcloud --project P --cors-origins https://app.example[,...] [--dry-run]
    python -m infra.deploy_gcloud apis --project P
    python -m infra.deploy_gcloud dead-letters --project P [--only NAME]

`deploy` (the default) enables the manifest's APIs, makes sure the topics, the dead-letter
topics and their hold subscriptions, the service accounts, their grants and IAM database users
exist, sets the media bucket's CORS for the origins and its quarantine lifecycle, uploads dist/source.zip as
gs://<project>-fn-source/source/<sha256>.zip (unless --source names another archive: that is a
rollback), deploys each function with `gcloud functions deploy --gen2`, sets the dead-letter
policy on each Pub/Sub trigger's subscription, and creates or updates the scheduler jobs. The
bucket, the Cloud SQL instance and the OpenAI secret come first (infra/RUNBOOK.md), after
`apis`, which only enables the APIs. `dead-letters` only sets the dead-letter policies
(terraform runs it after each trigger change). `--dry-run` prints the exact commands, one per
line, and runs nothing. Every step is idempotent: run it again after a change, or after a
failure.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
import subprocess
import sys
from pathlib import Path

from infra import manifest
from infra.gcloud import functions, iam, project, pubsub, storage
from infra.gcloud.target import Target
from infra.manifest import Manifest

ARCHIVE = manifest.ROOT / "dist" / "source.zip"
ORIGIN = re.compile(r"^https?://[^/*?#]+$")  # exact: scheme://host[:port], as terraform checks


def plan(m: Manifest, t: Target, archive: Path | None) -> list[list[str]]:
    """Every command of a full deploy, in order."""
    cmds = [project.enable_apis_command(m, t)]
    cmds += pubsub.topic_commands(m, t) + pubsub.hold_subscription_commands(m, t)
    cmds.append(project.source_bucket_command(t))
    cmds.append(storage.bucket_settings_command(t))
    cmds += iam.service_account_commands(m, t)
    cmds += iam.function_grant_commands(m, t) + iam.sql_user_commands(m, t)
    cmds += iam.platform_grant_commands(m, t)
    if archive is not None:
        cmds.append(project.upload_command(t, archive))
    cmds += [functions.deploy_command(f, t, m) for f in m.functions]
    cmds += functions.invoker_commands(m, t)
    cmds += dead_letter_commands(m, t)
    return cmds + pubsub.scheduler_commands(m, t)


def dead_letter_commands(m: Manifest, t: Target) -> list[list[str]]:
    return [pubsub.dead_letter_command(f, t) for f in m.functions if f.dead_letter_topic]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = ["deploy", "apis", "dead-letters"]
    parser.add_argument("step", nargs="?", choices=steps, default="deploy")
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", default="us-central1")
    parser.add_argument("--bucket", default="video-gen-image-bucket")
    parser.add_argument(
        "--cors-origins",
        help="comma-separated origins browsers call from, e.g. https://app.example.com "
        "(the api's CORS_ORIGINS and the bucket's CORS; required for deploy)",
    )
    parser.add_argument(
        "--quarantine-retention-days",
        type=int,
        default=30,
        help="objects under quarantine/ are deleted after this many days (as in terraform)",
    )
    parser.add_argument("--db-instance", default="imagegen-pg")
    parser.add_argument("--db-name", default="imagegen")
    parser.add_argument("--db-ip-type", choices=["public", "private"], default="public")
    parser.add_argument(
        "--vpc-connector",
        help="Serverless VPC Access connector (name or full path); required with --db-ip-type=private",
    )
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
    if args.db_ip_type == "private" and not args.vpc_connector:
        parser.error(
            "--db-ip-type=private needs --vpc-connector: a function reaches a private IP only "
            "through a Serverless VPC Access connector in its region (create one with "
            "`gcloud compute networks vpc-access connectors create`, on the instance's VPC)"
        )
    if args.db_ip_type == "public" and args.vpc_connector:
        parser.error("--vpc-connector goes with --db-ip-type=private (as in terraform)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    m = manifest.load()
    if args.only:
        unknown = set(args.only) - {f.name for f in m.functions}
        if unknown:
            print(f"unknown functions: {sorted(unknown)}", file=sys.stderr)
            return 2
        chosen = tuple(f for f in m.functions if f.name in args.only)
        m = dataclasses.replace(m, functions=chosen)
    archive = None
    source = args.source
    if source is None and args.step == "deploy":
        if not ARCHIVE.exists():
            print(f"{ARCHIVE} is missing: run `make package` first", file=sys.stderr)
            return 2
        archive, source = ARCHIVE, project.archive_object(args.project, ARCHIVE)
    t = Target(
        project=args.project,
        region=args.region,
        bucket=args.bucket,
        cors_origins=args.cors_origins,
        quarantine_retention_days=args.quarantine_retention_days,
        db_instance=args.db_instance,
        db_name=args.db_name,
        source=source or "",
        vpc_connector=args.vpc_connector,
        openai_secret_version=args.openai_secret_version,
        auth_issuer=args.auth_issuer,
        auth_audience=args.auth_audience,
    )
    if args.step == "apis":
        cmds = [project.enable_apis_command(m, t)]
    elif args.step == "dead-letters":
        cmds = dead_letter_commands(m, t)
    else:
        cmds = plan(m, t, archive)
    for cmd in cmds:
        print(shlex.join(cmd), flush=True)
        if not args.dry_run:
            subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
