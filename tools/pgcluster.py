"""A local PostgreSQL 15 cluster for development and tests, as root or as a normal user.

`initdb` refuses to run as root, so as root every server command runs as the `postgres` user,
in a folder that user can reach. The cluster listens on 127.0.0.1 only, with password
(SCRAM) authentication for TCP clients.

    python -m tools.pgcluster start --dir .local/postgres --port 54329
    python -m tools.pgcluster stop --dir .local/postgres
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pg8000.exceptions
import pg8000.native

PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin",)
SERVICE_USER = "postgres"
SUPERUSER = "postgres"


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL 15 server binary."""
    for folder in PG_BIN_DIRS:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(
        f"PostgreSQL 15 server binary {name!r} not found (looked in {', '.join(PG_BIN_DIRS)} and "
        "PATH). Install it with: apt-get install postgresql-15"
    )


def _as_root() -> bool:
    return os.geteuid() == 0


def _reachable_by_others(path: Path) -> bool:
    """True when every existing ancestor of `path` lets other users traverse it."""
    for folder in [path, *path.parents]:
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def resolve_root(preferred: Path) -> Path:
    """Where the cluster really lives: `preferred`, or (as root, when the postgres user cannot
    reach it) a folder under /tmp that `preferred` points to by a symlink."""
    preferred = preferred.absolute()
    if preferred.is_symlink():
        return preferred.resolve()
    if not _as_root() or _reachable_by_others(preferred.parent):
        preferred.mkdir(parents=True, exist_ok=True)
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    real = Path(tempfile.gettempdir()) / f"imagegen-pg-{digest}"
    real.mkdir(mode=0o755, exist_ok=True)
    preferred.parent.mkdir(parents=True, exist_ok=True)
    if preferred.exists():
        shutil.rmtree(preferred)
    preferred.symlink_to(real, target_is_directory=True)
    return real


def _runuser() -> str:
    """runuser, also when PATH lacks the sbin folders (e.g. `env -i` or a non-login shell)."""
    return shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin") or "runuser"


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    if _as_root():
        args = [_runuser(), "-u", SERVICE_USER, "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def connect(url: str, timeout: float | None = None) -> pg8000.native.Connection:
    """A pg8000 native connection from a `postgresql://user:password@host:port/db` URL."""
    parts = urlsplit(url)
    return pg8000.native.Connection(
        user=unquote(parts.username or SUPERUSER),
        password=unquote(parts.password) if parts.password else None,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        database=parts.path.lstrip("/") or "postgres",
        timeout=timeout,
    )


def query(url: str, statement: str, **params: object) -> list[dict[str, object]]:
    """Run one statement on a connection of its own; its rows as dicts."""
    conn = connect(url)
    try:
        found = conn.run(statement, **params) or []
        names = [c["name"] for c in conn.columns or []]
        return [dict(zip(names, row, strict=True)) for row in found]
    finally:
        conn.close()


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on the port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class Cluster:
    """One cluster in a folder: data/, postgres.log and the superuser's password; `settings`
    are server settings (`-c name=value`) over the defaults, e.g. {"max_connections": "40"}."""

    def __init__(
        self,
        root: Path,
        port: int,
        *,
        durable: bool = True,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.root = resolve_root(root)
        self.port = port
        self.durable = durable
        self.settings = {"max_connections": "200", **(settings or {})}
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"

    @property
    def password(self) -> str:
        return (self.root / "password").read_text().strip()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """Create the cluster once; a second call does nothing."""
        if (self.data / "PG_VERSION").exists():
            return
        password_file = self.root / "password"
        password_file.write_text(secrets.token_urlsafe(18) + "\n")
        password_file.chmod(0o644)
        if _as_root():
            shutil.chown(self.root, user=SERVICE_USER)
            self.root.chmod(0o755)
        _run(
            [
                pg_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={password_file}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )

    def start(self) -> None:
        """Start the server unless the port already answers; wait until it accepts connections."""
        self.init()
        if port_answers(self.port):
            self.wait_until_ready()  # a server left running may still be recovering from a crash
            return
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.root}",
            *(f"-c {name}={value}" for name, value in self.settings.items()),
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        try:
            _run(
                [
                    pg_bin("pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    " ".join(options),
                ]
            )
        except subprocess.CalledProcessError as exc:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"PostgreSQL did not start (log {self.log}):\n{exc.stderr}\n{tail}"
            ) from exc

    def wait_until_ready(self, timeout: float = 60) -> None:
        """Wait while a running server answers "the database system is starting up" (57P03:
        crash recovery after a killed stack), as `pg_ctl start -w` does for one it starts."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                connect(self.url(), timeout=5).close()
                return
            except pg8000.exceptions.DatabaseError as exc:
                starting = isinstance(exc.args[0], dict) and exc.args[0].get("C") == "57P03"
                if not starting or time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop at once (fast mode: pooled clients do not keep it alive)."""
        if (self.data / "postmaster.pid").exists():
            _run([pg_bin("pg_ctl"), "stop", "-m", "fast", "-w", "-D", str(self.data)])

    def ensure_database(self, name: str) -> str:
        """Create a database once (a second call does nothing); return its URL."""
        admin = pg8000.native.Connection(
            user=SUPERUSER, password=self.password, host="127.0.0.1", port=self.port
        )
        try:
            if not admin.run("SELECT 1 FROM pg_database WHERE datname = :n", n=name):
                admin.run(f'CREATE DATABASE "{name}"')
        finally:
            admin.close()
        return self.url(name)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("action", choices=["start", "stop", "url"])
    parser.add_argument("--dir", type=Path, default=Path(".local/postgres"))
    parser.add_argument("--port", type=int, default=54329)
    args = parser.parse_args(argv)
    cluster = Cluster(args.dir, args.port)
    if args.action == "start":
        cluster.start()
        print(cluster.url("imagegen"))
    elif args.action == "stop":
        cluster.stop()
    else:
        print(cluster.url("imagegen"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
