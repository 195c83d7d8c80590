"""Connections, transactions and driver-error translation for PostgreSQL through pg8000.

One connection pool per process (SQLAlchemy's QueuePool, nothing else of SQLAlchemy), created on
first use and shared by every thread. The transport follows from configuration: a host means a
direct pg8000 connection; an instance connection name means the Cloud SQL Python Connector (one
lazy-refresh Connector per process). SQL itself lives in shared/queries/; this module runs it.

A statement is prepared once per server connection and then costs one round trip (bind and
execute), with no re-parse and, after PostgreSQL's first executions, no re-planning; a
transaction adds only COMMIT (BEGIN travels with its first statement). A connection idle in the
pool for a while is pinged before use, so one dropped while idle is replaced unseen. One that
breaks mid-request, or whose prepared statements a migration made stale, fails that request (a
Transient) and empties the pool, so the next requests get fresh connections.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, cast

import pg8000.dbapi
import sqlalchemy.event
import sqlalchemy.exc
import sqlalchemy.pool
from pg8000.converters import make_params, timestamp_in, timestamptz_in
from pg8000.core import SYNC_MSG, Context, _flush, _write

from shared import config
from shared.errors import AppError, Conflict, InvalidInput, NotFound, Transient

_lock = threading.Lock()
_pool: sqlalchemy.pool.QueuePool | None = None
_connector: Any = None

APPLICATION_NAME = "imagegen"
PING_AFTER_IDLE_SECONDS = 5.0
_MAX_PREPARED = 256  # per connection; more distinct statements than this run unprepared
_RECYCLE_SECONDS = 1800

# SQLSTATE classes and codes that a later attempt may survive.
_TRANSIENT_CLASSES = ("08", "53", "57", "58")
_TRANSIENT_CODES = {"40001", "40P01", "55P03"}
_DRIVER_ERRORS = (sqlalchemy.exc.SQLAlchemyError, pg8000.dbapi.Error, OSError)
_OID_TIMESTAMP, _OID_TIMESTAMPTZ = 1114, 1184


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


def _iso_or(fallback: Any) -> Any:
    """A timestamp reader: ISO 8601 by the C parser, else pg8000's own (infinity, BC dates)."""

    def read(text: str) -> Any:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return fallback(text)

    return read


_read_timestamp, _read_timestamptz = _iso_or(timestamp_in), _iso_or(timestamptz_in)


def _with_fast_timestamps(raw: pg8000.dbapi.Connection) -> pg8000.dbapi.Connection:
    """pg8000 parses timestamps with strptime (tens of µs each); fromisoformat is ~20x faster."""
    raw.register_in_adapter(_OID_TIMESTAMP, _read_timestamp)
    raw.register_in_adapter(_OID_TIMESTAMPTZ, _read_timestamptz)
    return raw


def _ping_if_idle(raw: Any, record: Any, _proxy: Any) -> None:
    """On checkout: a connection idle for a while may have been dropped; check it first."""
    if (
        time.monotonic() - record.info.get("returned_at", time.monotonic())
        < PING_AFTER_IDLE_SECONDS
    ):
        return
    try:
        raw.execute_simple("SELECT 1")
    except (pg8000.dbapi.Error, OSError) as exc:
        raise sqlalchemy.exc.DisconnectionError() from exc  # the pool connects anew


def _note_return(_raw: Any, record: Any) -> None:
    record.info["returned_at"] = time.monotonic()


def _create_pool(db: config.DatabaseSettings) -> sqlalchemy.pool.QueuePool:
    connect = _connect_cloud_sql if db.uses_connector else _connect_direct
    created = sqlalchemy.pool.QueuePool(
        lambda: _with_fast_timestamps(connect(db)),
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
    """Close every pooled connection (tests, and processes that change configuration)."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool.dispose()
        _pool = None


@functools.lru_cache(maxsize=1024)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with its :name parameters as $1, $2 ... (a ::cast is left alone), and the names."""
    names: list[str] = []

    def number(found: re.Match[str]) -> str:
        if found.group(1) not in names:
            names.append(found.group(1))
        return f"${names.index(found.group(1)) + 1}"

    return _PARAMETER.sub(number, sql), tuple(names)


_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Connection:
    """One pooled server connection inside a transaction (see `transaction`)."""

    def __init__(self, raw: pg8000.dbapi.Connection, prepared: dict[str, Any]) -> None:
        self._raw = raw
        self._prepared = prepared  # {numbered sql: pg8000's prepared statement}, per connection
        self.begun = False  # BEGIN goes out with the first statement

    def run(self, sql: str, params: Mapping[str, Any]) -> tuple[list[str], list[Any] | None, int]:
        """(column names, rows or None, rows affected) of one statement."""
        text, names = _numbered(sql)
        values = make_params(self._raw.py_types, [params[name] for name in names])
        statement = self._prepared.get(text)
        if statement is None and len(self._prepared) < _MAX_PREPARED:
            statement = self._raw.prepare_statement(text, ())  # (name, columns, readers)
            self._prepared[text] = statement
        first, self.begun = not self.begun, True
        if statement is None:
            if first:
                self._raw.execute_simple("BEGIN")
            done = self._raw.execute_unnamed(text, vals=values)
        elif first:
            done = _begin_and_execute(self._raw, statement, values, text)
        else:
            name, columns, readers = statement
            done = self._raw.execute_named(name, values, columns, readers, text)
        return [c["name"] for c in done.columns or ()], done.rows, done.row_count


def _begin_and_execute(
    raw: pg8000.dbapi.Connection, statement: tuple[Any, Any, Any], values: Any, text: str
) -> Context:
    """BEGIN and a prepared statement in one round trip: pg8000's own steps for each (see
    CoreConnection.execute_simple and execute_named in pg8000 1.31), sent with one flush."""
    name, columns, readers = statement
    raw.send_QUERY("BEGIN")
    raw.send_BIND(name, values)
    raw.send_EXECUTE()
    _write(raw._sock, SYNC_MSG)
    _flush(raw._sock)
    done = Context(columns=columns, input_funcs=readers, statement=text)
    try:
        raw.handle_messages(Context("BEGIN"))
    finally:
        raw.handle_messages(done)  # the statement's answer is read whatever BEGIN's was
    return done


@contextlib.contextmanager
def transaction() -> Iterator[Connection]:
    """A connection inside one transaction: committed on success, rolled back on error. The
    transaction starts with the first statement, in the same round trip.

    Driver errors leave as AppErrors (see `translate`).
    """
    try:
        pooled = pool().connect()
    except _DRIVER_ERRORS as exc:
        raise translate(exc) from exc
    raw = _driver(pooled)
    try:
        conn = Connection(raw, pooled.info.setdefault("prepared", {}))
        yield conn
        if conn.begun:
            raw.execute_simple("COMMIT")
    except BaseException as exc:
        _roll_back(pooled, exc)
        if isinstance(exc, _DRIVER_ERRORS):
            raise translate(exc) from exc
        raise
    finally:
        pooled.close()


def _driver(pooled: Any) -> pg8000.dbapi.Connection:
    return cast(pg8000.dbapi.Connection, pooled.dbapi_connection)


def _roll_back(pooled: Any, error: BaseException) -> None:
    """End a failed transaction; an unusable connection is dropped, and with it the pool's
    others (a server restart or a migration affects them all), so the next requests connect
    afresh."""
    if not (isinstance(error, _DRIVER_ERRORS) and _unusable(error)):
        try:
            raw = _driver(pooled)
            if raw._in_transaction:  # pg8000's own flag, from the server's ReadyForQuery
                raw.execute_simple("ROLLBACK")
            return
        except (pg8000.dbapi.Error, OSError):
            pass
    pooled.invalidate()
    if _pool is not None:
        _pool.dispose()


def _unusable(exc: BaseException) -> bool:
    """The connection broke, or its prepared statements went stale."""
    sqlstate = _server_fields(exc).get("C", "")
    return not sqlstate or sqlstate[:2] in ("08", "57") or _stale_plan(exc)


def _stale_plan(exc: BaseException) -> bool:
    """A prepared statement reads a table a migration has changed since (PostgreSQL refuses a
    cached plan whose result type changed)."""
    fields = _server_fields(exc)
    return fields.get("C") == "0A000" and "cached plan" in fields.get("M", "")


def raw_connection() -> contextlib.AbstractContextManager[pg8000.dbapi.Connection]:
    """A pooled pg8000 connection, outside any transaction (scripts: see shared.migrate)."""

    @contextlib.contextmanager
    def borrowed() -> Iterator[pg8000.dbapi.Connection]:
        pooled = pool().connect()
        try:
            yield _driver(pooled)
        finally:
            pooled.close()

    return borrowed()


def rows(
    conn: Connection, sql: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run a statement and return its rows as dicts."""
    columns, found, _ = conn.run(sql, params or {})
    return [dict(zip(columns, row, strict=True)) for row in found or ()]


def one(
    conn: Connection, sql: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """Run a statement and return its first row, or None."""
    found = rows(conn, sql, params)
    return found[0] if found else None


def execute(conn: Connection, sql: str, params: Mapping[str, Any] | None = None) -> int:
    """Run a statement and return the number of rows it touched."""
    return conn.run(sql, params or {})[2]


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
    if sqlstate in _TRANSIENT_CODES or sqlstate[:2] in _TRANSIENT_CLASSES or _stale_plan(exc):
        return Transient("the database is busy; try again")
    if not sqlstate:
        # No server answer at all: pool timeout, refused or dropped connection.
        return Transient("the database is unavailable; try again")
    return AppError("database error")
