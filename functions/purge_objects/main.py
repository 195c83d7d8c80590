"""purge_objects: Pub/Sub object-deletions, `{"object_names": [...], "reason": "..."}`.

Idempotency: deleting an object that is already gone counts as done; a storage error raises, so
the message is redelivered (and dead-lettered after the subscription's attempts).
"""

import functions_framework
from cloudevents.http import CloudEvent

from shared import events, purge


@functions_framework.cloud_event
def purge_objects(event: CloudEvent) -> None:
    events.run("purge_objects", event, events.pubsub_message, lambda m: purge.purge(m.data))
