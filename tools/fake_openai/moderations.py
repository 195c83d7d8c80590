"""``POST /v1/moderations``: the omni-moderation answer, one result per input string (one for a
list of multimodal parts), nothing flagged unless a text carries a marker:

* ``[fake:flag]``: flagged as ``violence``;
* ``[fake:flag=harassment,self-harm/intent]``: flagged in those categories.
"""

from __future__ import annotations

import re
import uuid
from email.message import Message
from typing import TYPE_CHECKING, Any

from tools.fake_openai.protocol import ApiError, json_object

if TYPE_CHECKING:
    from tools.fake_openai.server import FakeOpenAI

CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
MODELS = {
    "omni-moderation-latest": "omni-moderation-2024-09-26",
    "omni-moderation-2024-09-26": "omni-moderation-2024-09-26",
    "text-moderation-latest": "text-moderation-007",
    "text-moderation-stable": "text-moderation-007",
}
FLAG_MARKER = re.compile(r"\[fake:flag(?:=([a-z/,-]+))?\]")


def moderate(
    fake: FakeOpenAI, headers: Message, body: bytes, record: dict[str, Any]
) -> dict[str, Any]:
    params = json_object(body)
    model = params.get("model") or "omni-moderation-latest"
    texts = _texts(params.get("input"))
    fake.note(record, model=model, input=[t for group in texts for t in group])
    if model not in MODELS:
        raise ApiError(
            404,
            f"The model '{model}' does not exist or you do not have access to it.",
            code="model_not_found",
        )
    fake.misbehave("moderations")
    results = [_result(group) for group in texts]
    fake.note(record, flagged=any(r["flagged"] for r in results))
    return {"id": f"modr-fake-{uuid.uuid4().hex}", "model": MODELS[model], "results": results}


def _texts(value: object) -> list[list[str]]:
    """The texts of each result: one per string of a list, all parts of a multimodal list."""
    if isinstance(value, str):
        return [[value]]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return [[v] for v in value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [[str(v.get("text", "")) for v in value if v.get("type") == "text"]]
    raise ApiError(
        400,
        "Invalid value for 'input': a string, a list of strings or a list of content parts.",
        param="input",
        code="invalid_value",
    )


def _result(texts: list[str]) -> dict[str, Any]:
    flagged: set[str] = set()
    for text in texts:
        for match in FLAG_MARKER.finditer(text):
            named = set(match.group(1).split(",")) if match.group(1) else {"violence"}
            unknown = named - set(CATEGORIES)
            if unknown:
                raise ApiError(400, f"Unknown moderation categories in a marker: {unknown}.")
            flagged |= named
    return {
        "flagged": bool(flagged),
        "categories": {c: c in flagged for c in CATEGORIES},
        "category_scores": {c: 0.97 if c in flagged else 0.0001 for c in CATEGORIES},
        "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
    }
