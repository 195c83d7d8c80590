"""plan_generation: triggered by Pub/Sub generation-requests.

Placeholder until its issue lands: logs and acknowledges."""

import functions_framework
from cloudevents.http import CloudEvent

from shared import log


@functions_framework.cloud_event
def plan_generation(event: CloudEvent) -> None:
    log.info(
        "event received",
        action="plan_generation.received",
        event_id=event["id"],
        type=event["type"],
    )
