"""register_upload: triggered by GCS object finalize (uploads/ prefix).

Placeholder until its issue lands: logs and acknowledges."""

import functions_framework
from cloudevents.http import CloudEvent

from shared import log


@functions_framework.cloud_event
def register_upload(event: CloudEvent) -> None:
    log.info(
        "event received",
        action="register_upload.received",
        event_id=event["id"],
        type=event["type"],
        subject=event.get("subject"),
    )
