"""Fixtures shared by every test folder.

PostgreSQL: one throwaway cluster per test run (or the server named by TEST_DATABASE_URL), the
schema migrated once into a template database, and a fresh copy of it for each test that asks
for `database`.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from shared import config, db, migrate
from tools.pgcluster import Cluster, connect, port_answers

TEMPLATE = "imagegen_template"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL 15 server's `postgres` database, with the schema in a template."""
    given = os.environ.get("TEST_DATABASE_URL")
    cluster = None
    if given:
        url = given
    else:
        root = Path(tempfile.mkdtemp(prefix="imagegen-test-pg-"))
        root.chmod(0o755)
        cluster = Cluster(root, _free_port(), durable=False)
        cluster.start()
        url = cluster.url("postgres")
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
