"""``POST /v1/chat/completions``: the prompt enhancer's answer keeps the user's text (markers
included), so a marker given to the enhancer reaches the calls that follow. It turns
``[fake:flag-enhanced]`` into ``[fake:flag]``: the enhanced prompt is flagged, the user's not."""

from __future__ import annotations

import time
import uuid
from email.message import Message
from typing import TYPE_CHECKING, Any

from tools.fake_openai.protocol import ApiError, json_object, refuse_streaming, require

if TYPE_CHECKING:
    from tools.fake_openai.server import FakeOpenAI

FLAG_ENHANCED = "[fake:flag-enhanced]"


def complete(
    fake: FakeOpenAI, headers: Message, body: bytes, record: dict[str, Any]
) -> dict[str, Any]:
    params = json_object(body)
    model, messages = params.get("model"), params.get("messages")
    text = user_text(messages)
    fake.note(record, model=model, prompt=text)
    require(model, "model")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "Missing required parameter: 'messages'.", param="messages")
    refuse_streaming(params)
    fake.misbehave("chat")
    enhanced = text.replace(FLAG_ENHANCED, "[fake:flag]")
    content = f"Cinematic, {enhanced}, dramatic lighting, shallow depth of field, 35mm film grain"
    prompt_tokens, completion_tokens = len(text.split()), len(content.split())
    return {
        "id": f"chatcmpl-fake-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def user_text(messages: object) -> str:
    """The text of the last user message."""
    if not isinstance(messages, list):
        return ""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        return ""
    content = users[-1].get("content")
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict)).strip()
    return content if isinstance(content, str) else ""
