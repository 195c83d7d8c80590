"""Connections, transactions and driver-error translation for PostgreSQL through pg8000.

One SQLAlchemy connection pool per process, created on first use and shared by every thread.
The transport follows from configuration: a host means a direct pg8000 connection; an instance
connection name means the Cloud SQL Python Connector (one lazy-refresh Connector per process).
SQL itself lives in shared/queries/; this module only runs it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pg8000.dbapi
import sqlalchemy
from sqlalchemy.engine import Connection, Engine

from shared import config
from shared.errors import AppError, Conflict, InvalidInput, NotFound, Transient

_lock = threading.Lock()
_engine: Engine | None = None
_connector: Any = None

APPLICATION_NAME = "imagegen"

# SQLSTATE classes and codes that a later attempt may survive.
_TRANSIENT_CLASSES = ("08", "53", "57", "58")
_TRANSIENT_CODES = {"40001", "40P01", "55P03"}


def _startup_params(db: config.DatabaseSettings) -> dict[str, str]:
    return {"options": f"-c statement_timeout={db.statement_timeout_ms}"}


def _connect_direct(db: config.DatabaseSettings) -> pg8000.dbapi.Connection:
    return pg8000.dbapi.connect(
        user=db.user,
        password=db.password,
        host=db.host or "127.0.0.1",
        port=db.port,
        database=db.name,
        timeout=10,
        application_name=APPLICATION_NAME,
        startup_params=_startup_params(db),
    )


def _cloud_sql_connector() -> Any:
    """The process's one Connector; lazy refresh suits instances whose CPU is throttled."""
    global _connector
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
        application_name=APPLICATION_NAME,
        startup_params=_startup_params(db),
    )


def _create_engine(db: config.DatabaseSettings) -> Engine:
    connect = _connect_cloud_sql if db.uses_connector else _connect_direct
    return sqlalchemy.create_engine(
        "postgresql+pg8000://",
        creator=lambda: connect(db),
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        pool_timeout=db.pool_timeout_seconds,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def engine() -> Engine:
    """The process's pool, built on first use."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                _engine = _create_engine(config.settings().database)
    return _engine


def dispose() -> None:
    """Close every pooled connection (tests, and processes that change configuration)."""
    global _engine
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine = None


@contextlib.contextmanager
def transaction() -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on error.

    Driver errors leave as AppErrors (see `translate`).
    """
    try:
        with engine().begin() as conn:
            yield conn
    except AppError:
        raise
    except (sqlalchemy.exc.SQLAlchemyError, pg8000.dbapi.Error, OSError) as exc:
        raise translate(exc) from exc


def rows(
    conn: Connection, sql: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run a statement and return its rows as dicts."""
    result = conn.execute(sqlalchemy.text(sql), dict(params or {}))
    return [dict(r) for r in result.mappings()] if result.returns_rows else []


def one(
    conn: Connection, sql: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """Run a statement and return its first row, or None."""
    found = rows(conn, sql, params)
    return found[0] if found else None


def execute(conn: Connection, sql: str, params: Mapping[str, Any] | None = None) -> int:
    """Run a statement and return the number of rows it touched."""
    return conn.execute(sqlalchemy.text(sql), dict(params or {})).rowcount


class ConstraintViolation(Conflict):
    """A unique, foreign-key or check constraint refused a write; `constraint` names it."""

    def __init__(self, message: str, *, constraint: str | None, sqlstate: str) -> None:
        super().__init__(message)
        self.constraint = constraint
        self.sqlstate = sqlstate


def _server_fields(exc: BaseException) -> dict[str, str]:
    """The server's error fields (C = SQLSTATE, n = constraint, M = message) if any."""
    orig = getattr(exc, "orig", exc)
    if (
        isinstance(orig, pg8000.dbapi.DatabaseError)
        and orig.args
        and isinstance(orig.args[0], dict)
    ):
        return orig.args[0]
    return {}


def translate(exc: BaseException) -> AppError:
    """Turn a driver or pool error into the project's error family. The one place that does."""
    fields = _server_fields(exc)
    sqlstate = fields.get("C", "")
    constraint = fields.get("n")
    if sqlstate == "23505":
        return ConstraintViolation("already exists", constraint=constraint, sqlstate=sqlstate)
    if sqlstate == "23503":
        violation = ConstraintViolation(
            "a referenced resource does not exist", constraint=constraint, sqlstate=sqlstate
        )
        violation.http_status = NotFound.http_status
        violation.code = NotFound.code
        return violation
    if sqlstate in ("23514", "23502"):
        return InvalidInput(
            "a value is out of range",
            details={"constraint": constraint},
            code="constraint_violation",
        )
    if sqlstate.startswith("22"):
        return InvalidInput("a value has the wrong form")
    if sqlstate in _TRANSIENT_CODES or sqlstate[:2] in _TRANSIENT_CLASSES:
        return Transient("the database is busy; try again")
    if not sqlstate:
        # No server answer at all: pool timeout, refused or dropped connection.
        return Transient("the database is unavailable; try again")
    return AppError("database error")
