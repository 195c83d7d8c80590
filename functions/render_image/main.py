"""render_image: Pub/Sub `render-requests` → one generated image recorded for one shot.

Message: {"job_id": "<uuid>", "index": <n>}. Idempotency key: (job, index) — a claim with a
lease per shot, an object name derived from the job, and a row unique on (job, index).
"""

import functions_framework
from cloudevents.http import CloudEvent

from shared import events
from shared.generation import rendering


@functions_framework.cloud_event
def render_image(event: CloudEvent) -> None:
    events.run(
        "render_image",
        event,
        events.from_message(rendering.shot_of),
        lambda shot: rendering.render_shot(*shot),
    )
