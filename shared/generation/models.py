"""Request shapes of the generation routes."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.vocabulary import ASPECT_RATIOS, CAMERA_ANGLES, JOB_STATUSES, SHOT_TYPES, STYLES
from shared.web.models import NON_BLANK_TEXT
from shared.web.pagination import PageQuery

MAX_REFERENCE_IMAGES = 8
_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Uuid = Annotated[str, StringConstraints(pattern=_UUID), Field(json_schema_extra={"format": "uuid"})]
Setting = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NON_BLANK_TEXT),
]


class GenerationRequest(BaseModel):
    """The body of POST /v1/generations."""

    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=4000, pattern=NON_BLANK_TEXT
        ),
    ]
    session_id: Uuid | None = None
    shot_type: Literal[SHOT_TYPES] | None = None  # type: ignore[valid-type]
    camera_angle: Literal[CAMERA_ANGLES] | None = None  # type: ignore[valid-type]
    style: Literal[STYLES] | None = None  # type: ignore[valid-type]
    location: Setting | None = None
    lighting: Setting | None = None
    weather: Setting | None = None
    is_custom_enabled: bool = False
    aspect_ratio: Literal[ASPECT_RATIOS] = "1:1"  # type: ignore[valid-type]
    number_of_shots: Annotated[int, Field(ge=1, le=10)] = 1
    reference_image_ids: Annotated[list[Uuid], Field(max_length=MAX_REFERENCE_IMAGES)] = []

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
