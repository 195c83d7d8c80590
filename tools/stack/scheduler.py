"""The local Cloud Scheduler: publishes each manifest `schedules` body to its function's topic.

Not on the cron: every STACK_SCHEDULE_SECONDS (default 60; 0 turns it off), so stuck jobs are
swept locally within a minute. It publishes through the emulator's REST API, as a scheduler job
with a Pub/Sub target does, keeping the relay free of the gRPC client.
"""

from __future__ import annotations

import base64
import threading

import requests

from infra.manifest import Manifest
from shared import log
from tools.stack.config import StackConfig


def publish(
    config: StackConfig, topic: str, body: str, attributes: dict[str, str] | None = None
) -> str:
    """Publish one message to the emulator; return its message id."""
    url = f"http://{config.pubsub_host}/v1/projects/{config.project}/topics/{topic}:publish"
    message: dict[str, object] = {"data": base64.b64encode(body.encode()).decode()}
    if attributes:
        message["attributes"] = attributes
    response = requests.post(url, json={"messages": [message]}, timeout=5)
    response.raise_for_status()
    return str(response.json()["messageIds"][0])


def run(config: StackConfig, spec: Manifest, stopping: threading.Event) -> None:
    """Publish every schedule once per interval until `stopping` is set."""
    jobs = [(f.topic, s) for f in spec.functions for s in f.schedules if f.topic]
    if config.schedule_seconds <= 0 or not jobs:
        return
    while not stopping.wait(config.schedule_seconds):
        for topic, schedule in jobs:
            try:
                message_id = publish(config, topic, schedule.body)
            except requests.RequestException as exc:
                log.warning(
                    "schedule not published",
                    action="scheduler.failed",
                    job=schedule.name,
                    error=str(exc),
                )
                continue
            log.info(
                "schedule published",
                action="scheduler.published",
                job=schedule.name,
                topic=topic,
                message_id=message_id,
            )
