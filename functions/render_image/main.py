"""render_image: triggered by Pub/Sub render-requests.

Placeholder until its issue lands: logs and acknowledges."""

import functions_framework
from cloudevents.http import CloudEvent

from shared import log


@functions_framework.cloud_event
def render_image(event: CloudEvent) -> None:
    log.info(
        "event received", action="render_image.received", event_id=event["id"], type=event["type"]
    )
