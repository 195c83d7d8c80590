"""Apply the schema files in order: `python -m shared.migrate` against the configured database.

Each file is idempotent and runs as one transaction under an advisory lock, so concurrent
migrations (two deploys at once) wait for each other instead of colliding.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from shared import config, db, log

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "db"
SCHEMA_FILES = ("schema.sql", "schema_image_generation.sql")
_LOCK_KEY = 7_314_159  # any constant shared by every migrator of this schema


def migrate(schema_dir: Path = SCHEMA_DIR) -> list[str]:
    """Run every schema file in order; returns the names applied."""
    applied = []
    for name in SCHEMA_FILES:
        sql = (schema_dir / name).read_text(encoding="utf-8")
        started = time.monotonic()
        with db.raw_connection() as raw:
            # The simple-query protocol runs a multi-statement script; one explicit transaction.
            raw.execute_simple(
                f"BEGIN;\nSELECT pg_advisory_xact_lock({_LOCK_KEY});\n{sql}\nCOMMIT;"
            )
        log.info(
            f"applied {name}",
            action="migrate.applied",
            file=name,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        applied.append(name)
    return applied


def main() -> int:
    try:
        target = config.settings().database
        migrate()
    except Exception as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    where = target.instance_connection_name or f"{target.host}:{target.port}"
    print(f"migrated {target.name} at {where}: {', '.join(SCHEMA_FILES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
