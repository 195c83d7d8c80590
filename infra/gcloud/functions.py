"""`gcloud functions deploy` of each manifest function, and who may invoke it."""

from __future__ import annotations

from infra import manifest
from infra.gcloud.target import RUNTIME, TRIGGER_ACCOUNT, Target
from infra.manifest import Function, Manifest


def env_vars(f: Function, t: Target, m: Manifest) -> dict[str, str]:
    """The environment of one function: shared/config.py's names, the same as terraform's."""
    return {
        "GCP_PROJECT": t.project,
        "BUCKET_NAME": t.bucket,
        "INSTANCE_CONNECTION_NAME": t.instance_connection_name,
        "DB_NAME": t.db_name,
        "DB_USER": t.db_user(f.account_id),
        "DB_IAM_AUTH": "true",
        "DB_IP_TYPE": t.db_ip_type,
        "DB_POOL_SIZE": str(f.pool_size),
        "DB_POOL_TIMEOUT_SECONDS": f"{f.pool_timeout_seconds:g}",
        "THREADS": str(f.concurrency),  # Cloud Functions: threads = concurrency for Python
        **{f"TOPIC_{key.upper()}": topic for key, topic in m.topics.items()},
        "OPENAI_CONCURRENT_IMAGES": str(m.model_limits.concurrent_images),
        "OPENAI_IMAGES_PER_MINUTE": str(m.model_limits.images_per_minute),
        "CORS_ORIGINS": ",".join(t.cors_origins),
        "AUTH_ISSUER": t.auth_issuer,
        "AUTH_AUDIENCE": t.auth_audience,
    }


def _network_flags(f: Function, t: Target) -> list[str]:
    """A private-IP database is reached through the connector; private ranges only, as terraform.
    A function with `vpc = false` (deliver-webhooks) never gets it: the internet only."""
    if t.connector_path is None or not f.vpc:
        return ["--clear-vpc-connector"]
    return [f"--vpc-connector={t.connector_path}", "--egress-settings=private-ranges-only"]


def _trigger_flags(f: Function, t: Target) -> list[str]:
    if f.trigger == "http":
        return ["--trigger-http", "--allow-unauthenticated", "--ingress-settings=all"]
    flags = [
        "--no-allow-unauthenticated",
        "--ingress-settings=internal-only",
        f"--trigger-location={t.region}",
        f"--trigger-service-account={t.sa_email(TRIGGER_ACCOUNT)}",
    ]
    if f.trigger == "gcs_finalize":
        flags += [
            f"--trigger-event-filters=type={manifest.GCS_FINALIZED}",
            f"--trigger-event-filters=bucket={t.bucket}",
        ]
    else:
        flags.append(f"--trigger-topic={f.topic}")
    # Event triggers made through the Cloud Functions v2 API do not retry unless told.
    return [*flags, "--retry" if f.retry else "--no-retry"]


def deploy_command(f: Function, t: Target, m: Manifest) -> list[str]:
    env = env_vars(f, t, m)
    cmd = [
        *("gcloud", "functions", "deploy", f.name, "--gen2", t.project_flag),
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
        "--serve-all-traffic-latest-revision",
        # "^;^" switches gcloud's list delimiter, so values may contain commas (gcloud topic escaping).
        "--set-env-vars=^;^" + ";".join(f"{k}={v}" for k, v in env.items()),
        *_network_flags(f, t),
    ]
    if f.secrets:
        refs = ",".join(
            f"{name}={manifest.SECRETS[name]}:{t.openai_secret_version}" for name in f.secrets
        )
        cmd.append(f"--set-secrets={refs}")
    return [*cmd, *_trigger_flags(f, t)]


def invoker_commands(m: Manifest, t: Target) -> list[list[str]]:
    """Event functions answer only the trigger account (--no-allow-unauthenticated drops others)."""
    return [
        [
            *("gcloud", "functions", "add-invoker-policy-binding", f.name),
            f"--region={t.region}",
            f"--member=serviceAccount:{t.sa_email(TRIGGER_ACCOUNT)}",
            t.project_flag,
        ]
        for f in m.functions
        if f.trigger != "http"
    ]
