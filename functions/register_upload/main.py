"""register_upload: GCS object finalize (google.cloud.storage.object.v1.finalized) on the bucket.

Acts on `uploads/{user_id}/...` only and returns at once for anything else; writes nothing under
`uploads/`. Idempotency key: the bucket path (bucket + object name), unique in reference_images;
reads are pinned to the event's object generation.
"""

import functions_framework
from cloudevents.http import CloudEvent

from shared import events
from shared.uploads import registration


@functions_framework.cloud_event
def register_upload(event: CloudEvent) -> None:
    events.run("register_upload", event, events.storage_object, registration.handle_finalize)
