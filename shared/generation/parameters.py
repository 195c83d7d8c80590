"""What a job asks for, declared once.

The request body extends `JobParameters`; the insert, the render specification, the prompt
brief and the demo's contact sheet take it as it is. Its defaults and bounds are the ones below
and the schema's CHECKs and column defaults, which tests/integration/test_schema.py holds equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from shared.vocabulary import ASPECT_RATIOS, CAMERA_ANGLES, SHOT_TYPES, STYLES
from shared.web.models import NON_BLANK_TEXT, Model

MIN_SHOTS, MAX_SHOTS, DEFAULT_SHOTS = 1, 10, 1
DEFAULT_ASPECT_RATIO = "1:1"
MAX_PROMPT_LENGTH = 4000
MAX_SETTING_LENGTH = 200

Setting = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_SETTING_LENGTH, pattern=NON_BLANK_TEXT
    ),
]


class JobParameters(Model):
    """The prompt and every setting of a job, with their defaults and bounds."""

    prompt: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True,
            min_length=1,
            max_length=MAX_PROMPT_LENGTH,
            pattern=NON_BLANK_TEXT,
        ),
    ]
    shot_type: Literal[SHOT_TYPES] | None = None  # type: ignore[valid-type]
    camera_angle: Literal[CAMERA_ANGLES] | None = None  # type: ignore[valid-type]
    style: Literal[STYLES] | None = None  # type: ignore[valid-type]
    location: Setting | None = None
    lighting: Setting | None = None
    weather: Setting | None = None
    is_custom_enabled: bool = False
    aspect_ratio: Literal[ASPECT_RATIOS] = DEFAULT_ASPECT_RATIO  # type: ignore[valid-type]
    number_of_shots: Annotated[int, Field(ge=MIN_SHOTS, le=MAX_SHOTS)] = DEFAULT_SHOTS

    @classmethod
    def of(cls, job: Mapping[str, Any]) -> JobParameters:
        """A recorded job's parameters (not validated again: the database checked them)."""
        return cls.model_construct(**{name: job[name] for name in cls.model_fields})

    def columns(self) -> dict[str, Any]:
        """The parameters as the job's columns take them."""
        return {name: getattr(self, name) for name in JobParameters.model_fields}
