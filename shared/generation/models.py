"""Request shapes of the generation routes."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from shared.generation.parameters import JobParameters
from shared.vocabulary import JOB_STATUSES
from shared.web.pagination import PageQuery

MAX_REFERENCE_IMAGES = 8
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Uuid = Annotated[str, StringConstraints(pattern=_UUID), Field(json_schema_extra={"format": "uuid"})]


class GenerationRequest(JobParameters):
    """The body of POST /v1/generations."""

    model_config = ConfigDict(extra="forbid")

    session_id: Uuid | None = None
    reference_image_ids: Annotated[list[Uuid], Field(max_length=MAX_REFERENCE_IMAGES)] = Field([])

    def fingerprint(self) -> str:
        """A hash of what was asked (ids lower-cased, references as a set): the request_hash."""
        fields = self.model_dump(mode="json")
        fields["session_id"] = (self.session_id or "").lower() or None
        fields["reference_image_ids"] = sorted({r.lower() for r in self.reference_image_ids})
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class JobListQuery(PageQuery):
    """The query of GET /v1/sessions/{id}/generations (documentation: `list_route` reads it)."""

    status: Literal[JOB_STATUSES] | None = None  # type: ignore[valid-type]
