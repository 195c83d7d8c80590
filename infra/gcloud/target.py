"""Where a gcloud deploy goes: the project and the names of what lives in it."""

from __future__ import annotations

from dataclasses import dataclass

RUNTIME = "python311"
TRIGGER_ACCOUNT = "fn-event-trigger"


@dataclass(frozen=True)
class Target:
    project: str
    region: str
    bucket: str
    cors_origins: tuple[str, ...]  # the api's CORS_ORIGINS and the media bucket's CORS
    db_instance: str
    db_name: str
    source: str
    vpc_connector: str | None = None  # set: the database has a private IP only
    openai_secret_version: str = "latest"  # noqa: S105 (a version name, not a secret)
    auth_issuer: str = ""
    auth_audience: str = ""
    quarantine_retention_days: int = 30  # the media bucket's lifecycle rule

    @property
    def project_flag(self) -> str:
        return f"--project={self.project}"

    @property
    def instance_connection_name(self) -> str:
        return f"{self.project}:{self.region}:{self.db_instance}"

    @property
    def db_ip_type(self) -> str:
        return "public" if self.vpc_connector is None else "private"

    @property
    def connector_path(self) -> str | None:
        """The connector's full name: gcloud would take a short one from the default region."""
        if self.vpc_connector is None or "/" in self.vpc_connector:
            return self.vpc_connector
        return f"projects/{self.project}/locations/{self.region}/connectors/{self.vpc_connector}"

    @property
    def source_bucket(self) -> str:
        return f"{self.project}-fn-source"

    def sa_email(self, account_id: str) -> str:
        return f"{account_id}@{self.project}.iam.gserviceaccount.com"

    def db_user(self, account_id: str) -> str:
        """The IAM database user of a service account: its email without the domain's tail."""
        return self.sa_email(account_id).removesuffix(".gserviceaccount.com")

    def topic_path(self, topic: str) -> str:
        """A topic's full name: gcloud resolves a bare one against the default project."""
        return f"projects/{self.project}/topics/{topic}"
