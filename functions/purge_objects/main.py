"""purge_objects: Pub/Sub object-deletions, `{"outbox_id": "<uuid>"}`: the objects one row of
the deletion outbox names, each only while it is the generation recorded for it.

Idempotency: the outbox row; an object already gone counts as done, and a row already purged
names nothing. A storage error raises, so the message is redelivered (and dead-lettered after
the subscription's attempts; the republisher publishes the row again later).
"""

import functions_framework
from cloudevents.http import CloudEvent

from shared import events, purge


@functions_framework.cloud_event
def purge_objects(event: CloudEvent) -> None:
    events.run("purge_objects", event, events.pubsub_message, lambda m: purge.purge(m.data))
