"""The Cloud SQL branch of the database layer, without a network: the connector is recorded."""

from __future__ import annotations

import sys
import types
from typing import ClassVar

import pytest

from shared import config, db
from shared.db import connections


class RecordingConnector:
    instances: ClassVar[list[RecordingConnector]] = []

    def __init__(self, **kwargs):
        self.init_kwargs = kwargs
        self.calls = []
        RecordingConnector.instances.append(self)

    def connect(self, instance, driver, **kwargs):
        self.calls.append((instance, driver, kwargs))
        raise ConnectionRefusedError("no network in unit tests")

    def close(self):
        pass


@pytest.fixture
def recorded(monkeypatch):
    module = types.ModuleType("google.cloud.sql.connector")
    module.Connector = RecordingConnector
    monkeypatch.setitem(sys.modules, "google.cloud.sql.connector", module)
    RecordingConnector.instances.clear()
    for name in ("DATABASE_URL", "DB_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INSTANCE_CONNECTION_NAME", "proj:europe-west1:imagegen")
    monkeypatch.setenv("DB_USER", "render-image@proj.iam")
    monkeypatch.setenv("DB_NAME", "imagegen")
    monkeypatch.setenv("DB_IAM_AUTH", "true")
    monkeypatch.setenv("DB_IP_TYPE", "private")
    monkeypatch.setenv("DB_POOL_SIZE", "1")
    config.settings.cache_clear()
    db.dispose()
    yield RecordingConnector.instances
    db.dispose()
    config.settings.cache_clear()


def test_cloud_sql_branch_uses_one_lazy_connector_with_iam(recorded):
    for _ in range(2):
        with pytest.raises(Exception), db.transaction():  # noqa: B017 - any failure; the call is what matters
            pass
    assert len(recorded) == 1, "one Connector per process, shared by every connection"
    connector = recorded[0]
    assert connector.init_kwargs == {"refresh_strategy": "lazy"}
    instance, driver, kwargs = connector.calls[0]
    assert (instance, driver) == ("proj:europe-west1:imagegen", "pg8000")
    assert kwargs["user"] == "render-image@proj.iam"
    assert kwargs["db"] == "imagegen"
    assert kwargs["enable_iam_auth"] is True
    assert kwargs["password"] is None
    assert kwargs["ip_type"] == "private"
    assert db.pool().size() == 1


def test_cloud_sql_failure_to_connect_is_transient(recorded):
    from shared.errors import Transient

    with pytest.raises(Transient), db.transaction():
        pass


def test_threads_connecting_at_once_share_one_connector(recorded, monkeypatch):
    """The pool connects from many threads; the first connections of a cold process race to
    create the Connector, and a second one would refresh and hold its own certificates."""
    import threading
    import time

    class SlowToBuild(RecordingConnector):
        def __init__(self, **kwargs):
            time.sleep(0.05)  # what building a real one costs: credentials, an event loop
            super().__init__(**kwargs)

    monkeypatch.setattr(sys.modules["google.cloud.sql.connector"], "Connector", SlowToBuild)
    start = threading.Barrier(8)

    def first_connection() -> None:
        start.wait(timeout=5)
        connections._cloud_sql_connector()

    threads = [threading.Thread(target=first_connection) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(recorded) == 1
