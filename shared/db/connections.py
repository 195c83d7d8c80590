"""The process's connection pool and its transport.

One pool per process (SQLAlchemy's QueuePool, nothing else of SQLAlchemy), created on first use
and shared by every thread; a transaction checks a connection out and returns it at its end, so
a request waiting on anything else (a model call) holds none
(docs/decisions/0009-many-shots-few-connections.md). The transport follows from configuration: a
host means a direct pg8000 connection; an instance connection name means the Cloud SQL Python
Connector (one lazy-refresh Connector per process). A connection idle in the pool for a while is
pinged before use, so one dropped while idle is replaced unseen. Connections are named after the
function (`imagegen/<K_SERVICE>` in pg_stat_activity). The driver and the pool's library are
loaded with the pool: a request that never touches the database never loads them.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from shared import config

if TYPE_CHECKING:
    import pg8000.dbapi
    import sqlalchemy.pool

_lock = threading.Lock()
_connector_lock = threading.Lock()
_pool: sqlalchemy.pool.QueuePool | None = None
_connector: Any = None

APPLICATION_NAME = "imagegen"
PING_AFTER_IDLE_SECONDS = 5.0
_RECYCLE_SECONDS = 1800
_OID_TIMESTAMP, _OID_TIMESTAMPTZ = 1114, 1184


def _startup_params(db: config.DatabaseSettings) -> dict[str, str]:
    return {"options": f"-c statement_timeout={db.statement_timeout_ms}"}


def application_name() -> str:
    """`imagegen`, or `imagegen/<function>` where K_SERVICE names it (pg_stat_activity)."""
    service = config.settings().service
    return f"{APPLICATION_NAME}/{service}" if service else APPLICATION_NAME


def _connect_direct(db: config.DatabaseSettings) -> pg8000.dbapi.Connection:
    import pg8000.dbapi

    return pg8000.dbapi.connect(
        user=db.user,
        password=db.password,
        host=db.host or "127.0.0.1",
        port=db.port,
        database=db.name,
        timeout=10,
        application_name=application_name(),
        startup_params=_startup_params(db),
    )


def _cloud_sql_connector() -> Any:
    """The process's one Connector (the pool's first connections may ask for it from several
    threads at once); lazy refresh suits instances whose CPU is throttled."""
    global _connector
    if _connector is None:
        with _connector_lock:
            if _connector is None:
                from google.cloud.sql.connector import Connector

                _connector = Connector(refresh_strategy="lazy")
    return _connector


def _connect_cloud_sql(db: config.DatabaseSettings) -> pg8000.dbapi.Connection:
    return _cloud_sql_connector().connect(
        db.instance_connection_name,
        "pg8000",
        user=db.user,
        password=db.password,
        db=db.name,
        enable_iam_auth=db.iam_auth,
        ip_type=db.ip_type,
        application_name=application_name(),
        startup_params=_startup_params(db),
    )


def _iso_or(fallback: Any) -> Any:
    """A timestamp reader: ISO 8601 by the C parser, else pg8000's own (infinity, BC dates)."""

    def read(text: str) -> Any:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return fallback(text)

    return read


@functools.cache
def _timestamp_readers() -> tuple[Any, Any]:
    from pg8000.converters import timestamp_in, timestamptz_in

    return _iso_or(timestamp_in), _iso_or(timestamptz_in)


def _with_fast_timestamps(raw: pg8000.dbapi.Connection) -> pg8000.dbapi.Connection:
    """pg8000 parses timestamps with strptime (tens of µs each); fromisoformat is ~20x faster."""
    read_timestamp, read_timestamptz = _timestamp_readers()
    raw.register_in_adapter(_OID_TIMESTAMP, read_timestamp)
    raw.register_in_adapter(_OID_TIMESTAMPTZ, read_timestamptz)
    return raw


def _ping_if_idle(raw: Any, record: Any, _proxy: Any) -> None:
    """On checkout: a connection idle for a while may have been dropped; check it first."""
    if (
        time.monotonic() - record.info.get("returned_at", time.monotonic())
        < PING_AFTER_IDLE_SECONDS
    ):
        return
    import pg8000.dbapi
    import sqlalchemy.exc

    try:
        raw.execute_simple("SELECT 1")
    except (pg8000.dbapi.Error, OSError) as exc:
        raise sqlalchemy.exc.DisconnectionError() from exc  # the pool connects anew


def _note_return(_raw: Any, record: Any) -> None:
    record.info["returned_at"] = time.monotonic()


def _transport(db: config.DatabaseSettings) -> pg8000.dbapi.Connection:
    return (_connect_cloud_sql if db.uses_connector else _connect_direct)(db)


def connect() -> pg8000.dbapi.Connection:
    """One connection outside the pool, over the configured transport (the LISTEN connection
    of shared/changes.py); the caller closes it."""
    return _transport(config.settings().database)


def _create_pool(db: config.DatabaseSettings) -> sqlalchemy.pool.QueuePool:
    import sqlalchemy.event
    import sqlalchemy.pool

    created = sqlalchemy.pool.QueuePool(
        lambda: _with_fast_timestamps(_transport(db)),
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        timeout=db.pool_timeout_seconds,
        recycle=_RECYCLE_SECONDS,
    )
    sqlalchemy.event.listen(created, "checkout", _ping_if_idle)
    sqlalchemy.event.listen(created, "checkin", _note_return)
    return created


def pool() -> sqlalchemy.pool.QueuePool:
    """The process's pool, built on first use."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = _create_pool(config.settings().database)
    return _pool


def dispose() -> None:
    """Close every pooled connection and the connector (tests, and processes that change
    configuration): the next checkout builds them from the settings of the moment."""
    global _pool, _connector
    with _lock:
        if _pool is not None:
            _pool.dispose()
        _pool = None
    with _connector_lock:
        if _connector is not None:
            _connector.close()
        _connector = None


def empty() -> None:
    """Close the idle connections; the pool stays and connects afresh on the next checkout."""
    if _pool is not None:
        _pool.dispose()


def driver(pooled: Any) -> pg8000.dbapi.Connection:
    """The pg8000 connection inside a pooled one."""
    return cast("pg8000.dbapi.Connection", pooled.dbapi_connection)


def raw_connection() -> contextlib.AbstractContextManager[pg8000.dbapi.Connection]:
    """A pooled pg8000 connection, outside any transaction (scripts: see shared.migrate)."""

    @contextlib.contextmanager
    def borrowed() -> Iterator[pg8000.dbapi.Connection]:
        pooled = pool().connect()
        try:
            yield driver(pooled)
        finally:
            pooled.close()

    return borrowed()
