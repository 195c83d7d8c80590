"""Configuration: every environment variable is read here, once, into one frozen object.

`settings()` builds it on first use (never at import) and validates everything at once, so a
misconfigured deployment fails with one message listing every problem.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from shared.errors import ConfigError

T = TypeVar("T")

DEFAULT_BUCKET = "video-gen-image-bucket"
DEFAULT_TEXT_MODEL = "gpt-5.4-mini"
# gpt-image-1 was shut down on 2026-10-23; the openai client's ImageModel docs point here.
DEFAULT_IMAGE_MODEL = "gpt-image-2.5-flare"
# Free of charge; reads text and images (the openai client's ModerationModel).
DEFAULT_MODERATION_MODEL = "omni-moderation-latest"


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the database is: a direct host (local) or a Cloud SQL instance (GCP)."""

    name: str
    user: str
    password: str | None
    host: str | None = None
    port: int = 5432
    instance_connection_name: str | None = None
    iam_auth: bool = False
    ip_type: str = "public"
    pool_size: int = 2
    max_overflow: int = 0
    pool_timeout_seconds: float = 10.0
    statement_timeout_ms: int = 30_000

    @property
    def uses_connector(self) -> bool:
        return self.instance_connection_name is not None


@dataclass(frozen=True)
class Topics:
    generation_requests: str = "generation-requests"
    render_requests: str = "render-requests"
    generation_events: str = "generation-events"
    object_deletions: str = "object-deletions"
    maintenance: str = "maintenance"


@dataclass(frozen=True)
class OpenAISettings:
    api_key: str | None
    base_url: str | None
    text_model: str
    image_model: str
    moderation_model: str
    timeout_seconds: float
    max_retries: int
    # On 5xx/timeouts that outlast the client's own retries: True renders the shot with the
    # Pillow fallback (the job's generation_method says so); False lets Pub/Sub retry it. A
    # rate limit (429) is never rendered with the fallback: the shot waits in its subscription.
    fallback_on_error: bool
    # The organisation's image limits, shared by every instance through PostgreSQL
    # (shared/generation/model_slots.py): image calls in flight, and started per minute.
    organization: str | None = None
    concurrent_images: int = 1000
    images_per_minute: int = 2000

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)


@dataclass(frozen=True)
class AuthSettings:
    issuer: str
    audience: str
    certs_url: str


@dataclass(frozen=True)
class UploadLimits:
    """What a reference upload may be (README, "Uploads"): UPLOAD_MAX_BYTES, UPLOAD_MAX_PIXELS,
    UPLOAD_MAX_SIDE, UPLOAD_FORMATS (a comma-separated subset of JPEG, PNG, WEBP) and
    UPLOAD_MAX_DECODE_BYTES."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_side: int = 12_000
    formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP")
    # Memory the one decode of an upload (its working copy) may need: estimated from the header
    # per format (shared/uploads/imageinfo.py): a WebP decodes whole at about 17 bytes a pixel.
    max_decode_bytes: int = 320 * 1024 * 1024


@dataclass(frozen=True)
class UsageLimits:
    """Each user's limits unless their `user_limits` row says otherwise (README, "Limits"):
    LIMIT_ACTIVE_JOBS (pending + processing at once), LIMIT_IMAGES_PER_DAY, LIMIT_UPLOADS_PER_DAY
    and LIMIT_UPLOAD_BYTES_PER_DAY (rolling 24 hours)."""

    active_jobs: int = 5
    images_per_day: int = 100
    uploads_per_day: int = 100
    upload_bytes_per_day: int = 1024 * 1024 * 1024


@dataclass(frozen=True)
class WebhookSettings:
    """Job webhooks (shared/webhooks/, shared/outbound.py). `allow_loopback_http` is the local
    stack's one relaxation (WEBHOOK_ALLOW_LOOPBACK_HTTP, off unless `make up` turns it on): a
    receiver on a loopback address, over http or https, on any port."""

    allow_loopback_http: bool = False


@dataclass(frozen=True)
class Settings:
    project: str
    bucket: str
    database: DatabaseSettings
    openai: OpenAISettings
    auth: AuthSettings
    topics: Topics = field(default_factory=Topics)
    service: str | None = None  # K_SERVICE: the function's name on Cloud Run and in the stack
    uploads: UploadLimits = field(default_factory=UploadLimits)
    limits: UsageLimits = field(default_factory=UsageLimits)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    signed_url_ttl_seconds: int = 900
    cors_origins: tuple[str, ...] = ()
    # Generation jobs (shared/generation/: planning, rendering, sweeper). A job not finished
    # job_deadline_seconds after it was queued fails. A claim on a plan or a shot lapses
    # render_lease_seconds after its holder's last heartbeat (renewed every third of it), so a
    # killed worker's shot is free again that soon. The sweeper re-drives a job that showed no
    # activity for job_stall_seconds, at most job_max_redrives times, then fails it.
    job_deadline_seconds: int = 900
    render_lease_seconds: int = 30
    job_stall_seconds: int = 120
    job_max_redrives: int = 3


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class _Reader:
    """Reads typed values from an environment mapping and collects every problem."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "").strip()
        return value or default

    def integer(self, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        def bounded(raw: str) -> int:
            value = int(raw)
            if value < minimum:
                self.problems.append(f"{name} must be >= {minimum}, got {value}")
            if maximum is not None and value > maximum:
                self.problems.append(f"{name} must be <= {maximum}, got {value}")
            return value

        return self._parsed(name, default, bounded, "an integer")

    def number(self, name: str, default: float) -> float:
        return self._parsed(name, default, float, "a number")

    def flag(self, name: str, default: bool) -> bool:
        return self._parsed(name, default, _boolean, "one of true/false/1/0/yes/no/on/off")

    def _parsed(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        """The variable read by `parse`, `default` when it is unset; a problem (and `default`)
        when `parse` refuses it."""
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problems.append(f"{name} must be {expected}, got {raw!r}")
            return default


def firebase_issuer(project: str) -> str:
    """The issuer of a project's Firebase Auth ID tokens (AUTH_ISSUER's default)."""
    return f"https://securetoken.google.com/{project}"


def _boolean(raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError(raw)


def _database(r: _Reader) -> DatabaseSettings:
    pool: dict[str, Any] = {
        "pool_size": r.integer("DB_POOL_SIZE", 2, minimum=1),
        "max_overflow": r.integer("DB_MAX_OVERFLOW", 0),
        "pool_timeout_seconds": r.number("DB_POOL_TIMEOUT_SECONDS", 10.0),
        "statement_timeout_ms": r.integer("DB_STATEMENT_TIMEOUT_MS", 30_000),
    }
    url = r.text("DATABASE_URL")
    instance = r.text("INSTANCE_CONNECTION_NAME")
    if url and instance:
        r.problems.append("set either DATABASE_URL/DB_HOST or INSTANCE_CONNECTION_NAME, not both")
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            r.problems.append("DATABASE_URL must look like postgresql://user:pass@host:port/db")
            return DatabaseSettings(name="", user="", password=None, **pool)
        return DatabaseSettings(
            host=parts.hostname,
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password) if parts.password else None,
            name=parts.path.lstrip("/") or "postgres",
            **pool,
        )
    name = r.text("DB_NAME", "imagegen") or "imagegen"
    user = r.text("DB_USER")
    password = r.text("DB_PASSWORD")
    if instance:
        if instance.count(":") != 2:
            r.problems.append("INSTANCE_CONNECTION_NAME must be project:region:instance")
        iam = r.flag("DB_IAM_AUTH", False)
        ip_type = (r.text("DB_IP_TYPE", "public") or "public").lower()
        if ip_type not in ("public", "private", "psc"):
            r.problems.append(f"DB_IP_TYPE must be public, private or psc, got {ip_type!r}")
        if not user:
            r.problems.append("DB_USER is required with INSTANCE_CONNECTION_NAME")
        if not iam and not password:
            r.problems.append("DB_PASSWORD is required unless DB_IAM_AUTH=true")
        return DatabaseSettings(
            name=name,
            user=user or "",
            password=None if iam else password,
            instance_connection_name=instance,
            iam_auth=iam,
            ip_type=ip_type,
            **pool,
        )
    host = r.text("DB_HOST")
    if not host:
        r.problems.append(
            "no database configured: set DATABASE_URL, DB_HOST (with DB_USER, DB_PASSWORD, "
            "DB_NAME) or INSTANCE_CONNECTION_NAME"
        )
    return DatabaseSettings(
        host=host,
        port=r.integer("DB_PORT", 5432, minimum=1),
        user=user or "postgres",
        password=password,
        name=name,
        **pool,
    )


def _upload_formats(r: _Reader) -> tuple[str, ...]:
    raw = r.text("UPLOAD_FORMATS")
    if raw is None:
        return UploadLimits.formats
    formats = tuple(dict.fromkeys(f.strip().upper() for f in raw.split(",") if f.strip()))
    if not formats or not set(formats) <= set(UploadLimits.formats):
        r.problems.append(
            f"UPLOAD_FORMATS must be a comma-separated subset of {', '.join(UploadLimits.formats)}"
            f", got {raw!r}"
        )
        return UploadLimits.formats
    return formats


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Build and validate settings from an environment mapping (default: os.environ)."""
    r = _Reader(os.environ if env is None else env)
    project = r.text("GCP_PROJECT") or r.text("GOOGLE_CLOUD_PROJECT") or "local-project"
    openai = OpenAISettings(
        api_key=r.text("OPENAI_API_KEY"),
        base_url=r.text("OPENAI_BASE_URL"),
        text_model=r.text("OPENAI_TEXT_MODEL", DEFAULT_TEXT_MODEL) or DEFAULT_TEXT_MODEL,
        image_model=r.text("OPENAI_IMAGE_MODEL", DEFAULT_IMAGE_MODEL) or DEFAULT_IMAGE_MODEL,
        moderation_model=r.text("OPENAI_MODERATION_MODEL", DEFAULT_MODERATION_MODEL)
        or DEFAULT_MODERATION_MODEL,
        # 3 attempts of 80 s plus back-off fit render-image's 300 s (tests/unit/test_generation_openai.py).
        timeout_seconds=r.number("OPENAI_TIMEOUT_SECONDS", 80.0),
        max_retries=r.integer("OPENAI_MAX_RETRIES", 2),
        fallback_on_error=r.flag("OPENAI_FALLBACK_ON_ERROR", True),
        organization=r.text("OPENAI_ORGANIZATION"),
        concurrent_images=r.integer("OPENAI_CONCURRENT_IMAGES", 1000, minimum=1),
        images_per_minute=r.integer("OPENAI_IMAGES_PER_MINUTE", 2000, minimum=1),
    )
    auth = AuthSettings(
        issuer=r.text("AUTH_ISSUER", firebase_issuer(project)) or "",
        audience=r.text("AUTH_AUDIENCE", project) or project,
        certs_url=r.text(
            "AUTH_CERTS_URL",
            "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com",
        )
        or "",
    )
    uploads = UploadLimits(
        # At most the default: the bound the OpenAPI document gives for a signed upload's size.
        max_bytes=r.integer(
            "UPLOAD_MAX_BYTES", UploadLimits.max_bytes, minimum=1, maximum=UploadLimits.max_bytes
        ),
        max_pixels=r.integer("UPLOAD_MAX_PIXELS", UploadLimits.max_pixels, minimum=1),
        max_side=r.integer("UPLOAD_MAX_SIDE", UploadLimits.max_side, minimum=1),
        formats=_upload_formats(r),
        max_decode_bytes=r.integer(
            "UPLOAD_MAX_DECODE_BYTES", UploadLimits.max_decode_bytes, minimum=1
        ),
    )
    limits = UsageLimits(
        active_jobs=r.integer("LIMIT_ACTIVE_JOBS", UsageLimits.active_jobs),
        images_per_day=r.integer("LIMIT_IMAGES_PER_DAY", UsageLimits.images_per_day),
        uploads_per_day=r.integer("LIMIT_UPLOADS_PER_DAY", UsageLimits.uploads_per_day),
        upload_bytes_per_day=r.integer(
            "LIMIT_UPLOAD_BYTES_PER_DAY", UsageLimits.upload_bytes_per_day
        ),
    )
    settings = Settings(
        project=project,
        service=r.text("K_SERVICE"),
        bucket=r.text("BUCKET_NAME", DEFAULT_BUCKET) or DEFAULT_BUCKET,
        database=_database(r),
        openai=openai,
        auth=auth,
        topics=Topics(
            generation_requests=r.text("TOPIC_GENERATION_REQUESTS", Topics.generation_requests)
            or Topics.generation_requests,
            render_requests=r.text("TOPIC_RENDER_REQUESTS", Topics.render_requests)
            or Topics.render_requests,
            generation_events=r.text("TOPIC_GENERATION_EVENTS", Topics.generation_events)
            or Topics.generation_events,
            object_deletions=r.text("TOPIC_OBJECT_DELETIONS", Topics.object_deletions)
            or Topics.object_deletions,
            maintenance=r.text("TOPIC_MAINTENANCE", Topics.maintenance) or Topics.maintenance,
        ),
        uploads=uploads,
        limits=limits,
        webhooks=WebhookSettings(allow_loopback_http=r.flag("WEBHOOK_ALLOW_LOOPBACK_HTTP", False)),
        signed_url_ttl_seconds=r.integer("SIGNED_URL_TTL_SECONDS", 900, minimum=60),
        cors_origins=tuple(
            o.strip() for o in (r.text("CORS_ORIGINS", "") or "").split(",") if o.strip()
        ),
        job_deadline_seconds=r.integer("JOB_DEADLINE_SECONDS", 900, minimum=30),
        render_lease_seconds=r.integer("RENDER_LEASE_SECONDS", 30, minimum=3),
        job_stall_seconds=r.integer("JOB_STALL_SECONDS", 120, minimum=1),
        job_max_redrives=r.integer("JOB_MAX_REDRIVES", 3),
    )
    if r.problems:
        raise ConfigError(r.problems)
    return settings


@functools.cache
def settings() -> Settings:
    """The process's settings, loaded on first use."""
    return load()
