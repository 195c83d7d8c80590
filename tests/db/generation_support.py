"""Stand-ins for the generation tests on a real PostgreSQL: the official Pub/Sub emulator, the
GCS emulator and a throwaway signing key, started once per test process and stopped at exit.

`cloud()` returns them (or skips the test when the Pub/Sub emulator is not installed);
`Cloud.use(monkeypatch)` points the code's settings and clients at them for one test, and the
`Cloud` reads what the code published through pull subscriptions, as the local stack's tails do.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from tools.stack import emulator, keys

TOPICS = ("generation-requests", "render-requests", "generation-events", "object-deletions")
PROJECT = "local-project"
BUCKET = "video-gen-image-bucket"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer on port {port} within 30 s")


def _signing_key(folder: Path) -> Path:
    return keys.ensure_signing_credentials(folder / "signer.json", PROJECT)


class Cloud:
    """The running emulators, and what was published to the generation topics."""

    def __init__(self) -> None:
        self.pubsub_port, self.storage_port = free_port(), free_port()
        try:
            pubsub_command = emulator.emulator_command(self.pubsub_port)
        except emulator.EmulatorMissing as exc:
            pytest.skip(str(exc))
        self.folder = Path(tempfile.mkdtemp(prefix="imagegen-gen-"))
        logs = (self.folder / "emulators.log").open("ab")
        self.processes = [
            subprocess.Popen(
                pubsub_command,
                stdout=logs,
                stderr=subprocess.STDOUT,
            ),
            subprocess.Popen(
                [
                    sys.executable,
                    *("-m", "tools.gcs_emulator", "start"),
                    *("--host", "127.0.0.1", "--port", str(self.storage_port), "--in-memory"),
                ],
                cwd=Path(__file__).resolve().parents[2],
                stdout=logs,
                stderr=subprocess.STDOUT,
            ),
        ]
        atexit.register(self.stop)
        _wait_for_port(self.pubsub_port, self.processes[0], "the Pub/Sub emulator")
        _wait_for_port(self.storage_port, self.processes[1], "the GCS emulator")
        self.environ = {
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.pubsub_port}",
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.storage_port}",
            "SIGNING_CREDENTIALS_FILE": str(_signing_key(self.folder)),
            "GCP_PROJECT": PROJECT,
            "BUCKET_NAME": BUCKET,
        }
        with pytest.MonkeyPatch.context() as patch:
            self.use(patch)
            from google.cloud import pubsub_v1

            from shared import storage

            self.subscriber = pubsub_v1.SubscriberClient()
            publisher = pubsub_v1.PublisherClient()
            for topic in TOPICS:
                publisher.create_topic(name=publisher.topic_path(PROJECT, topic), timeout=10)
                self.subscriber.create_subscription(
                    name=self._subscription(topic),
                    topic=publisher.topic_path(PROJECT, topic),
                    timeout=10,
                )
            self.storage = storage.client()
            self.storage.create_bucket(BUCKET)
        forget_clients()
        self.seen: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def use(self, patch: pytest.MonkeyPatch) -> None:
        """Point settings and clients at these emulators until `patch` is undone."""
        for name, value in self.environ.items():
            patch.setenv(name, value)
        forget_clients()

    def _subscription(self, topic: str) -> str:
        return self.subscriber.subscription_path(PROJECT, f"{topic}-tail")

    def pull(self, topic: str) -> None:
        """Move whatever is waiting on the topic's tail into `seen`."""
        try:
            answer = self.subscriber.pull(
                subscription=self._subscription(topic), max_messages=500, timeout=2
            )
        except gexc.DeadlineExceeded:
            return
        if answer.received_messages:
            for received in answer.received_messages:
                self.seen[topic].append(
                    {
                        **json.loads(received.message.data),
                        "_attributes": dict(received.message.attributes),
                    }
                )
            self.subscriber.acknowledge(
                subscription=self._subscription(topic),
                ack_ids=[m.ack_id for m in answer.received_messages],
            )

    def messages(
        self, topic: str, job_id: Any, at_least: int = 0, timeout: float = 5
    ) -> list[dict[str, Any]]:
        """The messages published to `topic` about one job, waiting up to `timeout` for `at_least`."""
        deadline = time.monotonic() + timeout
        while True:
            self.pull(topic)
            found = [m for m in self.seen[topic] if m.get("job_id") == str(job_id)]
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def objects(self, prefix: str) -> list[str]:
        return sorted(b.name for b in self.storage.list_blobs(BUCKET, prefix=prefix))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
            if process.poll() is None:
                process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


_cloud: Cloud | None = None


def forget_clients() -> None:
    """Drop the process's cached settings and clients, so the next use reads the environment."""
    from shared import config, pubsub, storage
    from shared.generation import openai_images

    config.settings.cache_clear()
    pubsub._publisher = None
    storage._client = None
    openai_images._client = None


def cloud() -> Cloud:
    """The process's emulators, started on first use."""
    global _cloud
    if _cloud is None:
        _cloud = Cloud()
    return _cloud
