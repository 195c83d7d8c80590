"""The parts of bench/bench_api.py that are not the measurement or the data: a token issuer,
the `api` process and a load generator (closed loop or paced)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "bench-project"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rsa() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def signing_key_file(folder: Path) -> Path:
    """A throwaway service-account key: URLs are signed locally, as on the local stack."""
    path = folder.parent / "bench-signing.json"
    if not path.exists():
        info = {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "bench",
            "private_key": _pem(_rsa()),
            "client_email": f"api@{PROJECT}.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "http://127.0.0.1:9/token",
        }
        path.write_text(json.dumps(info))
    return path


@dataclass
class Issuer:
    """Google-format certificates on 127.0.0.1 and RS256 tokens signed by their key."""

    key: Any
    signer: Any
    server: ThreadingHTTPServer

    @classmethod
    def start(cls) -> Issuer:
        from cryptography.hazmat.primitives import serialization
        from google.auth import crypt

        from tools.stack import keys

        key = _rsa()
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        cert_pem = keys.self_signed_certificate_pem(key_pem, "bench-issuer").decode()
        body = json.dumps({"bench": cert_pem})

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "public, max-age=3600")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return cls(key, crypt.RSASigner.from_string(_pem(key), key_id="bench"), server)

    def env(self) -> dict[str, str]:
        return {
            "GCP_PROJECT": PROJECT,
            "AUTH_ISSUER": f"https://securetoken.google.com/{PROJECT}",
            "AUTH_AUDIENCE": PROJECT,
            "AUTH_CERTS_URL": f"http://127.0.0.1:{self.server.server_port}/certs",
        }

    def token(self, subject: str) -> str:
        from google.auth import jwt

        now = int(time.time())
        claims = {
            "iss": f"https://securetoken.google.com/{PROJECT}",
            "aud": PROJECT,
            "sub": subject,
            "iat": now,
            "exp": now + 3600,
        }
        return jwt.encode(self.signer, claims).decode()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class ApiProcess:
    """The `api` function under functions-framework, as the local stack runs it."""

    process: subprocess.Popen[bytes]
    port: int
    pool_size: int

    @classmethod
    def start(cls, database_url: str, issuer: Issuer) -> ApiProcess:
        from infra import manifest

        api = manifest.load().function("api")
        pool_size = api.pool_size
        port = _free_port()
        env = {
            **os.environ,
            **issuer.env(),
            "DATABASE_URL": database_url,
            "DB_POOL_SIZE": str(pool_size),
            "THREADS": os.environ.get("THREADS") or str(api.concurrency),
            "PYTHONPATH": str(ROOT),
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        }
        (ROOT / ".local").mkdir(exist_ok=True)
        log = open(ROOT / ".local" / "bench-api.log", "wb")  # noqa: SIM115 - the process owns it
        framework = Path(sys.executable).parent / "functions-framework"
        command = [str(framework), "--source", str(ROOT / "functions/api/main.py")]
        command += ["--target", "api", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/v1/healthz")
                if conn.getresponse().status == 200:
                    return cls(process, port, pool_size)
            except OSError:
                time.sleep(0.2)
        process.kill()
        raise RuntimeError("the api function did not start; see .local/bench-api.log")

    def describe(self) -> str:
        from infra import manifest

        threads = os.environ.get("THREADS") or str(manifest.load().function("api").concurrency)
        workers = os.environ.get("WORKERS", "1")
        return f"{workers} worker x {threads} threads (gunicorn gthread), pool {self.pool_size}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def percentiles(timings: Sequence[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


def drive(
    port: int,
    keys: Sequence[Any],
    target: Callable[[Any], tuple[str, str]],
    clients: int,
    total: int,
    label: str = "",
    rate: float | None = None,
) -> dict[str, Any]:
    """`total` GETs from `clients` keep-alive connections, walking `keys` in order (so a cold
    run never repeats one); p50/p99 of each request as its client saw it. Without `rate` the
    clients send back to back (saturation); with it they are paced to `rate` requests/s in
    all, each on its own schedule, as people browsing would be."""
    timings: list[float] = []
    errors = [0]
    position = [0]
    lock = threading.Lock()

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        interval = clients / rate if rate else 0.0
        due = time.perf_counter() + interval * number / clients
        while True:
            if interval:
                time.sleep(max(0.0, due - time.perf_counter()))
                due += interval
            with lock:
                if position[0] >= total:
                    break
                key = keys[position[0] % len(keys)]
                position[0] += 1
            path, token = target(key)
            started = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                timings.append(elapsed)
                errors[0] += response.status != 200
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - started
    return {"label": label, **percentiles(timings), "rps": len(timings) / wall, "errors": errors[0]}
