"""Configuration: one validated object, every problem reported at once."""

from __future__ import annotations

import pytest

from shared import config
from shared.errors import ConfigError

DIRECT = {"DATABASE_URL": "postgresql://app:s%40cret@127.0.0.1:5433/imagegen"}


def test_defaults_and_database_url():
    settings = config.load(DIRECT)
    assert settings.bucket == "video-gen-image-bucket"
    db = settings.database
    assert (db.host, db.port, db.user, db.password, db.name) == (
        "127.0.0.1",
        5433,
        "app",
        "s@cret",
        "imagegen",
    )
    assert not db.uses_connector
    assert not settings.openai.enabled
    assert settings.openai.image_model == config.DEFAULT_IMAGE_MODEL
    assert not settings.webhooks.allow_loopback_http  # the local stack's relaxation: off


def test_limits_and_moderation_have_defaults_and_are_checked():
    settings = config.load(DIRECT)
    assert settings.limits == config.UsageLimits(5, 100, 100, 1024**3)
    assert settings.openai.moderation_model == "omni-moderation-latest"
    assert settings.uploads.max_decode_bytes == 320 * 1024**2
    changed = config.load({**DIRECT, "LIMIT_IMAGES_PER_DAY": "500", "LIMIT_ACTIVE_JOBS": "0"})
    assert (changed.limits.images_per_day, changed.limits.active_jobs) == (500, 0)
    with pytest.raises(ConfigError) as caught:
        config.load({**DIRECT, "LIMIT_UPLOADS_PER_DAY": "-1", "UPLOAD_MAX_DECODE_BYTES": "x"})
    assert len(caught.value.problems) == 2


def test_instance_connection_name_selects_the_connector_with_iam():
    settings = config.load(
        {
            "INSTANCE_CONNECTION_NAME": "proj:europe-west1:db",
            "DB_USER": "sa@proj.iam",
            "DB_IAM_AUTH": "true",
            "DB_IP_TYPE": "PRIVATE",
            "DB_POOL_SIZE": "1",
        }
    )
    db = settings.database
    assert db.uses_connector and db.iam_auth and db.password is None
    assert (db.instance_connection_name, db.ip_type, db.pool_size) == (
        "proj:europe-west1:db",
        "private",
        1,
    )


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        config.load(
            {
                "INSTANCE_CONNECTION_NAME": "bad",
                "DB_IAM_AUTH": "maybe",
                "DB_POOL_SIZE": "two",
                "OPENAI_TIMEOUT_SECONDS": "soon",
                "DB_IP_TYPE": "carrier-pigeon",
            }
        )
    message = str(caught.value)
    for name in (
        "INSTANCE_CONNECTION_NAME",
        "DB_IAM_AUTH",
        "DB_POOL_SIZE",
        "OPENAI_TIMEOUT_SECONDS",
        "DB_IP_TYPE",
        "DB_USER",
        "DB_PASSWORD",
    ):
        assert name in message
    assert len(caught.value.problems) == 7


@pytest.mark.parametrize("raw", ["yes", "TRUE", "1", "on"])
def test_booleans_parse_strictly_true(raw):
    assert config.load({**DIRECT, "OPENAI_FALLBACK_ON_ERROR": raw}).openai.fallback_on_error is True


@pytest.mark.parametrize("raw", ["tru", "2", "y"])
def test_booleans_refuse_anything_else(raw):
    with pytest.raises(ConfigError, match="OPENAI_FALLBACK_ON_ERROR"):
        config.load({**DIRECT, "OPENAI_FALLBACK_ON_ERROR": raw})


def test_no_database_is_a_clear_error():
    with pytest.raises(ConfigError, match="no database configured"):
        config.load({})


def test_both_transports_at_once_is_refused():
    with pytest.raises(ConfigError, match="not both"):
        config.load({**DIRECT, "INSTANCE_CONNECTION_NAME": "p:r:i"})


def test_settings_are_built_once(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", DIRECT["DATABASE_URL"])
    config.settings.cache_clear()
    try:
        assert config.settings() is config.settings()
    finally:
        config.settings.cache_clear()


def test_the_upload_limit_may_be_lowered_not_raised():
    """The OpenAPI document bounds a signed upload's size at the default."""
    base = {"DATABASE_URL": "postgresql://u:p@127.0.0.1:5432/db"}
    assert config.load({**base, "UPLOAD_MAX_BYTES": "1000"}).uploads.max_bytes == 1000
    with pytest.raises(ConfigError) as caught:
        config.load({**base, "UPLOAD_MAX_BYTES": str(20 * 1024 * 1024 + 1)})
    assert "UPLOAD_MAX_BYTES must be <= 20971520" in str(caught.value)
