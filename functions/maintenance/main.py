"""maintenance: triggered by Pub/Sub maintenance (Cloud Scheduler).

Placeholder until its issue lands: logs and acknowledges."""

import functions_framework
from cloudevents.http import CloudEvent

from shared import log


@functions_framework.cloud_event
def maintenance(event: CloudEvent) -> None:
    log.info(
        "event received", action="maintenance.received", event_id=event["id"], type=event["type"]
    )
