"""`make demo`: start a local PostgreSQL, migrate it and show what it holds.

The end-to-end demo (upload, generate, contact sheet) grows from here as the stack lands.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pg8000.native

from tools.pgcluster import Cluster

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "imagegen"


def ensure_database(cluster: Cluster) -> str:
    """Create the application database once; return its URL."""
    admin = pg8000.native.Connection(
        user="postgres", password=cluster.password, host="127.0.0.1", port=cluster.port
    )
    try:
        if not admin.run("SELECT 1 FROM pg_database WHERE datname = :n", n=DB_NAME):
            admin.run(f"CREATE DATABASE {DB_NAME}")
    finally:
        admin.close()
    return cluster.url(DB_NAME)


def main() -> int:
    port = int(os.environ.get("PG_PORT", "54329"))
    print(f"[1/3] starting PostgreSQL 15 on 127.0.0.1:{port} ...", flush=True)
    cluster = Cluster(ROOT / ".local" / "postgres", port)
    cluster.start()
    url = ensure_database(cluster)
    os.environ["DATABASE_URL"] = url

    from shared import db, migrate

    print("[2/3] migrating db/schema.sql and db/schema_image_generation.sql ...", flush=True)
    migrate.migrate()
    print("[3/3] what the database holds:", flush=True)
    with db.transaction() as conn:
        tables = db.rows(
            conn,
            "SELECT c.relname AS name, c.reltuples::bigint AS estimate,"
            " (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) AS triggers,"
            " (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) AS indexes"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname",
        )
        for table in tables:
            count = db.one(conn, f'SELECT count(*) AS n FROM "{table["name"]}"')
            assert count is not None
            print(
                f"  {table['name']:<34} rows={count['n']:<6} indexes={table['indexes']:<3}"
                f" triggers={table['triggers']}"
            )
    db.dispose()
    print(f"\nDATABASE_URL={url}\nStop it with: make down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
