"""Fixtures shared by every test folder: the one harness (tools/fixtures holds what it starts).

PostgreSQL: one throwaway cluster per test run (or the server named by TEST_DATABASE_URL), the
schema migrated once into a template database, and a fresh copy of it for each test that asks
for `database`. The emulators are started once per run, on first use: `storage_emulator` (GCS)
alone, or `emulators` (Pub/Sub too; skipped with the install hint when it is missing). The
OpenAI fake is `fake_openai`, a webhook endpoint `receiver`; `functions` serves a function under
functions-framework for one test. The token issuer, signing key and api settings come from
tests/apikit.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from shared import config, db, migrate
from tests.apikit import api_env, issuer, no_database, signing_key_file  # noqa: F401
from tools.fake_openai import FakeOpenAI
from tools.fixtures import processes
from tools.fixtures.cloud import Cloud, reset_clients
from tools.fixtures.webhook_receiver import Receiver
from tools.pgcluster import connect, port_answers
from tools.stack import emulator

TEMPLATE = "imagegen_template"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL 15 server's `postgres` database, with the schema in a template."""
    given = os.environ.get("TEST_DATABASE_URL")
    cluster = None if given else processes.throwaway_cluster("imagegen-test-pg-")
    url = given or cluster.url("postgres")  # type: ignore[union-attr]
    admin = connect(url)
    admin.run(f"DROP DATABASE IF EXISTS {TEMPLATE}")
    admin.run(f"CREATE DATABASE {TEMPLATE}")
    admin.close()
    _use_database(_with_database(url, TEMPLATE))
    migrate.migrate()
    db.dispose()
    try:
        yield url
    finally:
        db.dispose()
        if cluster is not None:
            cluster.destroy()
            assert not port_answers(cluster.port)


def _use_database(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    config.settings.cache_clear()
    db.dispose()


@pytest.fixture
def database(pg_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test; the app's configuration points at it."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = connect(pg_server_url)
    admin.run(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    url = _with_database(pg_server_url, name)
    saved = os.environ.get("DATABASE_URL")
    _use_database(url)
    try:
        yield url
    finally:
        db.dispose()
        admin.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
        if saved is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = saved
        config.settings.cache_clear()


@pytest.fixture(scope="session")
def storage_emulator() -> Iterator[processes.Started]:
    """The GCS emulator, in memory, for the whole run."""
    with processes.gcs_emulator() as running:
        yield running


@pytest.fixture(scope="session")
def emulators(storage_emulator: processes.Started) -> Iterator[Cloud]:
    """The Pub/Sub and GCS emulators with the product's topics and bucket, for the whole run."""
    try:
        cloud = Cloud(storage_emulator)
    except emulator.EmulatorMissing as exc:
        pytest.skip(str(exc))
    try:
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """OpenAI on: the fake, reached by the real client, without client retries (fast faults)."""
    with FakeOpenAI() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-fake")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_MAX_RETRIES", "0")
        reset_clients()
        yield server
    monkeypatch.undo()
    reset_clients()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 that accepts everything (204), for one test."""
    with Receiver() as running:
        yield running


@pytest.fixture
def functions(tmp_path: Path) -> Iterator[Callable[..., processes.Started]]:
    """`functions(source, target, env)`: a function served by functions-framework for this test
    (its log in the test's folder), stopped after it."""
    started: list[processes.Started] = []

    def serve(source: str, target: str, env: Mapping[str, str]) -> processes.Started:
        running = processes.function(source, target, env, log=tmp_path / f"{target}.log")
        started.append(running)
        return running

    yield serve
    for running in started:
        running.stop()
