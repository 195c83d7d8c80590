"""plan_generation: Pub/Sub `generation-requests` → one `render-requests` message per shot.

Message: {"job_id": "<uuid>"}. Idempotency: the job's plan claim (compare-and-set with a
lease); a duplicate or a redelivery after a crash finishes the same plan, never a second one.
"""

import functions_framework
from cloudevents.http import CloudEvent

from shared import events
from shared.generation import planning


@functions_framework.cloud_event
def plan_generation(event: CloudEvent) -> None:
    events.run("plan_generation", event, events.from_message(planning.job_id_of), planning.plan)
