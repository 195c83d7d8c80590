"""Driver and pool errors as the project's error family: `translate` is the one place that does
it, by SQLSTATE and constraint name."""

from __future__ import annotations

import functools

from shared.errors import AppError, Conflict, InvalidInput, NotFound, Transient

# SQLSTATE classes and codes that a later attempt may survive.
_TRANSIENT_CLASSES = ("08", "53", "57", "58")
_TRANSIENT_CODES = {"40001", "40P01", "55P03"}
_QUERY_CANCELED = "57014"


@functools.cache
def driver_errors() -> tuple[type[BaseException], ...]:
    """What the driver and the pool raise (loaded with the pool, so the import costs nothing)."""
    import pg8000.dbapi
    import sqlalchemy.exc

    return (sqlalchemy.exc.SQLAlchemyError, pg8000.dbapi.Error, OSError)


class ConstraintViolation(Conflict):
    """A unique, foreign-key or check constraint refused a write; `constraint` names it."""

    def __init__(self, message: str, *, constraint: str | None, sqlstate: str) -> None:
        super().__init__(message)
        self.constraint = constraint
        self.sqlstate = sqlstate


def _server_fields(exc: BaseException) -> dict[str, str]:
    """The server's error fields (C = SQLSTATE, n = constraint, M = message) if any."""
    import pg8000.dbapi

    orig = getattr(exc, "orig", exc)
    if (
        isinstance(orig, pg8000.dbapi.DatabaseError)
        and orig.args
        and isinstance(orig.args[0], dict)
    ):
        return orig.args[0]
    return {}


def _stale_plan(exc: BaseException) -> bool:
    """A prepared statement reads a table a migration has changed since (PostgreSQL refuses a
    cached plan whose result type changed)."""
    fields = _server_fields(exc)
    return fields.get("C") == "0A000" and "cached plan" in fields.get("M", "")


def unusable(exc: BaseException) -> bool:
    """The connection broke, or its prepared statements went stale. Of class 57 (operator
    intervention) only a cancelled statement (57014: statement_timeout, a cancel request)
    leaves the connection usable; shutdowns, a dropped database and timeouts end it."""
    sqlstate = _server_fields(exc).get("C", "")
    if sqlstate == _QUERY_CANCELED:
        return False
    return not sqlstate or sqlstate[:2] in ("08", "57") or _stale_plan(exc)


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
    if sqlstate in ("23514", "23502"):  # the constraint's name stays out of the answer
        return InvalidInput("a value is out of range", code="constraint_violation")
    if sqlstate.startswith("22"):
        return InvalidInput("a value has the wrong form")
    if sqlstate in _TRANSIENT_CODES or sqlstate[:2] in _TRANSIENT_CLASSES or _stale_plan(exc):
        return Transient("the database is busy; try again")
    if not sqlstate:
        # No server answer at all: pool timeout, refused or dropped connection.
        return Transient("the database is unavailable; try again")
    return AppError("database error")
