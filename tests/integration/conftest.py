"""Fixtures of the integration tests: the emulators pointed at by one test (`cloud`, OpenAI off
so that the fallback renders; `fake` turns the OpenAI fake on), users, and a fresh bucket for
the upload tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import db, storage
from tests.integration import factories as make
from tools.fake_openai import FakeOpenAI
from tools.fixtures import processes
from tools.fixtures.cloud import Cloud, reset_clients
from tools.stack import keys


@pytest.fixture
def cloud(database: str, emulators: Cloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """A fresh database, the emulators, and OpenAI switched off (the fallback renders)."""
    emulators.use(monkeypatch)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_FALLBACK_ON_ERROR"):
        monkeypatch.delenv(name, raising=False)
    reset_clients()
    yield emulators
    reset_clients()


@pytest.fixture
def fake(cloud: Cloud, fake_openai: FakeOpenAI) -> FakeOpenAI:
    """OpenAI on, over the emulators: the fake, through the real client."""
    return fake_openai


@pytest.fixture
def alice(cloud: Cloud) -> dict[str, Any]:
    with db.transaction() as conn:
        return make.user(conn, f"alice-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def bob(cloud: Cloud) -> dict[str, Any]:
    with db.transaction() as conn:
        return make.user(conn, f"bob-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def bucket(
    storage_emulator: processes.Started,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[str]:
    """A fresh bucket in the GCS emulator (and a signing key), the app configured to use it."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    key = keys.ensure_signing_credentials(tmp_path / "key.json", "local-project")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_emulator.url)
    monkeypatch.setenv("BUCKET_NAME", name)
    monkeypatch.setenv("SIGNING_CREDENTIALS_FILE", str(key))
    reset_clients()
    storage.client().create_bucket(name)
    yield name
    reset_clients()


@pytest.fixture
def owner(database: str) -> dict[str, Any]:
    with db.transaction() as conn:
        return make.user(conn)
