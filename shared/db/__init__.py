"""PostgreSQL through pg8000: `connections` (the pool and its transport), `statements`
(transactions and prepared statements) and `driver_errors` (driver errors as ours). Callers use
what this package exports; the SQL itself lives in shared/queries/.
"""

from shared.db.connections import connect, dispose, pool, raw_connection
from shared.db.driver_errors import ConstraintViolation
from shared.db.statements import Connection, execute, one, page, rows, transaction

__all__ = [
    "Connection",
    "ConstraintViolation",
    "connect",
    "dispose",
    "execute",
    "one",
    "page",
    "pool",
    "raw_connection",
    "rows",
    "transaction",
]
