"""purge_objects: triggered by Pub/Sub object-deletions.

Placeholder until its issue lands: logs and acknowledges."""

import functions_framework
from cloudevents.http import CloudEvent

from shared import log


@functions_framework.cloud_event
def purge_objects(event: CloudEvent) -> None:
    log.info(
        "event received", action="purge_objects.received", event_id=event["id"], type=event["type"]
    )
