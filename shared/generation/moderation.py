"""Moderation before spend: OpenAI's moderation endpoint (free of charge) reads a job's texts
before the prompt enhancer and before any image call (planning.py).

A flagged text raises ContentRefused (code `content_policy`) naming the flagged categories,
and the job fails at once. A moderation outage that outlasts the client's retries raises
ModelUnavailable (ModelRateLimited for a 429), so the message is retried: a job is never
planned unmoderated while OpenAI is configured. Without an OpenAI key nothing is moderated (the fallback renderer pays for
nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared import config
from shared.generation import openai_images
from shared.generation.openai_images import ContentRefused

MODERATION_TIMEOUT_SECONDS = 30.0


def check(texts: Sequence[str]) -> None:
    """Raise ContentRefused, naming the categories, if moderation flags any of `texts`."""
    import openai  # loaded with the client (openai_images), never without a key

    try:
        answer = openai_images.client().moderations.create(
            model=config.settings().openai.moderation_model,
            input=list(texts),
            timeout=MODERATION_TIMEOUT_SECONDS,
        )
    except openai.OpenAIError as exc:
        raise openai_images.translate(exc) from exc
    flagged = [result for result in answer.results if result.flagged]
    if not flagged:
        return
    categories = sorted(
        {
            name
            for result in flagged
            for name, hit in result.categories.model_dump(by_alias=True).items()
            if hit
        }
    )
    raise ContentRefused(
        f"The request was flagged by moderation ({', '.join(categories) or 'unspecified'}).",
        details={"categories": categories},
    )
