"""deliver_webhooks: Pub/Sub `generation-events` → at most one signed POST to the job's webhook.

Message: a job's start, image or finish (shared/generation/job_events.py). Idempotency key: the
event's domain key per job (started_at, the image's id, the finish's event id): one webhook
message each, claimed per attempt (compare-and-set with a lease); a settled one is not sent again.
"""

import functions_framework
from cloudevents.http import CloudEvent

from shared import events
from shared.webhooks import delivery


@functions_framework.cloud_event
def deliver_webhooks(event: CloudEvent) -> None:
    events.run("deliver_webhooks", event, events.from_message(delivery.event_of), delivery.deliver)
