"""Running SQL: transactions, and statements prepared once per server connection.

SQL itself lives in shared/queries/ as plain text with `:name` parameters; this module runs it.
A statement is prepared once per server connection and then costs one round trip (bind and
execute), with no re-parse and, after PostgreSQL's first executions, no re-planning; a
transaction adds only COMMIT (BEGIN travels with its first statement). A connection that breaks
mid-request, or whose prepared statements a migration made stale, fails that request (a
Transient) and empties the pool, so the next requests get fresh connections.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from shared.db import connections
from shared.db.driver_errors import driver_errors, translate, unusable

if TYPE_CHECKING:
    import pg8000.dbapi
    from pg8000.core import Context

_MAX_PREPARED = 256  # per connection; more distinct statements than this run unprepared


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
        from pg8000.converters import make_params  # loaded with the pool: no cost per call

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
    from pg8000.core import SYNC_MSG, Context, _flush, _write

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
        pooled = connections.pool().connect()
    except driver_errors() as exc:
        raise translate(exc) from exc
    raw = connections.driver(pooled)
    try:
        conn = Connection(raw, pooled.info.setdefault("prepared", {}))
        yield conn
        if conn.begun:
            raw.execute_simple("COMMIT")
    except BaseException as exc:
        _roll_back(pooled, exc)
        if isinstance(exc, driver_errors()):
            raise translate(exc) from exc
        raise
    finally:
        pooled.close()


def _roll_back(pooled: Any, error: BaseException) -> None:
    """End a failed transaction; an unusable connection is dropped, and with it the pool's
    others (a server restart or a migration affects them all), so the next requests connect
    afresh."""
    if not (isinstance(error, driver_errors()) and unusable(error)):
        import pg8000.dbapi

        try:
            raw = connections.driver(pooled)
            if raw._in_transaction:  # pg8000's own flag, from the server's ReadyForQuery
                raw.execute_simple("ROLLBACK")
            return
        except (pg8000.dbapi.Error, OSError):
            pass
    pooled.invalidate()
    connections.empty()


def rows(
    conn: Connection, sql: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run a statement and return its rows as dicts."""
    columns, found, _ = conn.run(sql, params or {})
    return [dict(zip(columns, row, strict=True)) for row in found or ()]


def page(
    conn: Connection,
    sql: str,
    params: Mapping[str, Any],
    *,
    limit: int,
    after: tuple[Any, Any] | None,
    key: str,
) -> list[dict[str, Any]]:
    """A page of a list ordered newest first by (`key`, id): the statement reads `:limit`, and
    `:after_<key>` with `:after_id`, the (key, id) of the last row seen (NULL on the first page)."""
    after_key, after_id = after or (None, None)
    keyset = {"limit": limit, f"after_{key}": after_key, "after_id": after_id}
    return rows(conn, sql, {**params, **keyset})


def one(
    conn: Connection, sql: str, params: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """Run a statement and return its first row, or None."""
    found = rows(conn, sql, params)
    return found[0] if found else None


def execute(conn: Connection, sql: str, params: Mapping[str, Any] | None = None) -> int:
    """Run a statement and return the number of rows it touched."""
    return conn.run(sql, params or {})[2]
