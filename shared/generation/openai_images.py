"""OpenAI for generation jobs: prompt enhancement (chat) and one image per shot.

One client per process, made on first use (never at import). Its timeout and retries are set
on purpose: the client itself retries 429, 5xx, timeouts and connection errors (honouring
`retry-after`), so an error that reaches this module is final for this attempt. With the
defaults (80 s, 2 retries) three attempts and their back-off fit render-image's 300 s
timeout; the chat call has its own 30 s budget inside plan-generation's 120 s.

Errors leave as ours: `ContentRefused` (the safety system's `moderation_blocked`) and
`ModelRequestInvalid` (any other 4xx) are permanent; `ModelRateLimited` (429
`rate_limit_exceeded` after the client's retries, with the answer's retry-after) and
`ModelUnavailable` (5xx, timeouts, connection failures, an exhausted quota) are retryable.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared import config
from shared.errors import AppError, RateLimited, Transient, Unprocessable

if TYPE_CHECKING:
    import openai

TEXT_TIMEOUT_SECONDS = 30.0
# How long a 429 holds the organisation back when its answer names no retry-after, and at most.
RATE_LIMIT_PAUSE_SECONDS = 10.0
MAX_RATE_LIMIT_PAUSE_SECONDS = 60.0
Reference = tuple[str, bytes, str]  # (file name, bytes, content type), as images.edit takes them

_lock = threading.Lock()
_client: openai.OpenAI | None = None

_SYSTEM = (
    "You write prompts for an image model. Turn the user's brief into one vivid, concrete "
    "prompt of at most 120 words. Keep every element of the brief, including any text in "
    "square brackets, and honour its shot type, camera angle, style, location, lighting and "
    "weather. Answer with the prompt only."
)


class ContentRefused(Unprocessable):
    code = "content_policy"


class ModelRequestInvalid(Unprocessable):
    code = "model_request_invalid"


class ModelUnavailable(Transient):
    code = "model_unavailable"


class ModelRateLimited(RateLimited):
    """The organisation's rate limit: wait, do not fall back (see model_slots)."""

    code = "model_rate_limited"

    def __init__(self, message: str, *, pause_seconds: float) -> None:
        super().__init__(message, retry_after=max(1, round(pause_seconds)))
        self.pause_seconds = pause_seconds


def client() -> openai.OpenAI:
    """The process's client, configured from settings on first use (the library too: jobs
    without OpenAI configured never load it)."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                import openai

                s = config.settings().openai
                _client = openai.OpenAI(
                    api_key=s.api_key,
                    organization=s.organization,
                    base_url=s.base_url,
                    timeout=s.timeout_seconds,
                    max_retries=s.max_retries,
                )
    return _client


def reset() -> None:
    """Forget the client: the next call makes one from the current settings (tests)."""
    global _client
    with _lock:
        _client = None


def translate(exc: openai.OpenAIError) -> AppError:
    """Map a client error to ours (see the module docstring)."""
    import openai

    if isinstance(exc, openai.BadRequestError) and exc.code == "moderation_blocked":
        return ContentRefused("The image service refused the prompt under its content policy.")
    if isinstance(exc, openai.RateLimitError) and exc.code != "insufficient_quota":
        return ModelRateLimited(
            "The image service's rate limit is reached.", pause_seconds=_retry_after(exc)
        )
    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return ModelUnavailable(f"The image service did not answer ({type(exc).__name__}).")
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code in (408, 409, 429) or exc.status_code >= 500:
            return ModelUnavailable(f"The image service is unavailable ({exc.status_code}).")
        detail = exc.code or type(exc).__name__
        return ModelRequestInvalid(
            f"The image service refused the request ({exc.status_code} {detail})."
        )
    return ModelRequestInvalid(f"The image service answered unexpectedly ({type(exc).__name__}).")


def _retry_after(exc: openai.APIStatusError) -> float:
    """The answer's retry-after in seconds (bounded), or the default pause."""
    try:
        seconds = float(exc.response.headers.get("retry-after", ""))
    except ValueError:
        return RATE_LIMIT_PAUSE_SECONDS
    return min(max(seconds, 0.0), MAX_RATE_LIMIT_PAUSE_SECONDS)


def enhance_prompt(brief: str) -> str | None:
    """The text model's prompt for a brief, or None when it gives no usable answer."""
    import openai

    s = config.settings().openai
    try:
        answer = client().chat.completions.create(
            model=s.text_model,
            messages=[{"role": "system", "content": _SYSTEM}, {"role": "user", "content": brief}],
            timeout=TEXT_TIMEOUT_SECONDS,
        )
    except openai.OpenAIError as exc:
        raise translate(exc) from exc
    message = answer.choices[0].message if answer.choices else None
    text = (message.content or "").strip() if message and not message.refusal else ""
    return text or None


def generate_image(prompt: str, size: tuple[int, int], references: Sequence[Reference]) -> bytes:
    """One JPEG for the prompt; with references the edit endpoint conditions it on them."""
    import openai

    s = config.settings().openai
    params: dict[str, Any] = {
        "model": s.image_model,
        "prompt": prompt,
        "size": f"{size[0]}x{size[1]}",
        "n": 1,
        "output_format": "jpeg",
    }
    try:
        if references:
            result = client().images.edit(image=list(references), **params)
        else:
            result = client().images.generate(**params)
    except openai.OpenAIError as exc:
        raise translate(exc) from exc
    encoded = result.data[0].b64_json if result.data else None
    if not encoded:
        raise ModelRequestInvalid("The image service returned no image.")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ModelRequestInvalid("The image service returned a malformed image.") from exc
