"""maintenance: Pub/Sub `maintenance` topic, fed by Cloud Scheduler (`{"task": NAME}`).

Idempotency: every task is safe to run twice or concurrently (compare-and-set in the database).
"""

import functions_framework
from cloudevents.http import CloudEvent

from shared import events
from shared.maintenance import run as run_task


@functions_framework.cloud_event
def maintenance(event: CloudEvent) -> None:
    events.run("maintenance", event, events.pubsub_message, lambda message: run_task(message.data))
