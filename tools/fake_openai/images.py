"""``POST /v1/images/generations`` and ``POST /v1/images/edits``: validated as the real API
validates them, answered with cheap gradients of the requested size and format.

Markers in an image prompt: ``[fake:moderation]`` (400 ``moderation_blocked``), ``[fake:500]``,
``[fake:429]`` (every attempt) and ``[fake:slow=SECONDS]``."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import time
from email.message import Message
from typing import TYPE_CHECKING, Any

from PIL import Image
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.http import parse_options_header

from tools.fake_openai.protocol import (
    ApiError,
    http_fault,
    json_object,
    moderation_blocked,
    refuse_streaming,
    require,
)

if TYPE_CHECKING:
    from tools.fake_openai.server import FakeOpenAI

MAX_REFERENCE_IMAGES = 16
MIN_EDGE, MAX_LONG_EDGE, MAX_SHORT_EDGE = 256, 3840, 2160
STANDARD_SIZES = frozenset({"1024x1024", "1536x1024", "1024x1536"})
STANDARD_SIZE_MODELS = frozenset({"gpt-image-1.5", "gpt-image-1-mini", "chatgpt-image-latest"})
RETIRED_MODELS = frozenset({"dall-e-2", "dall-e-3", "gpt-image-1"})
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
IMAGE_FIELD = re.compile(r"image(\[\d*\])?")
SIZE = re.compile(r"(\d{1,5})x(\d{1,5})")
SLOW_MARKER = re.compile(r"\[fake:slow=(\d+(?:\.\d+)?)\]")


def generate(
    fake: FakeOpenAI, headers: Message, body: bytes, record: dict[str, Any]
) -> dict[str, Any]:
    params = json_object(body)
    fake.note(record, **_summary(params, []))
    return _answer(fake, params, references=0)


def edit(fake: FakeOpenAI, headers: Message, body: bytes, record: dict[str, Any]) -> dict[str, Any]:
    params, images = _multipart(headers, body)
    fake.note(record, **_summary(params, images))
    if not images:
        raise ApiError(400, "Missing required parameter: 'image'.", param="image")
    if len(images) > MAX_REFERENCE_IMAGES:
        raise ApiError(400, f"At most {MAX_REFERENCE_IMAGES} images.", param="image")
    sizes = [_reference_size(name, content_type, data) for name, content_type, data in images]
    fake.note(record, reference_sizes=sizes)
    return _answer(fake, params, references=len(images))


def _answer(fake: FakeOpenAI, params: dict[str, Any], references: int) -> dict[str, Any]:
    """Validate an image request as the real API does, then render its images."""
    model = require(params.get("model"), "model")
    prompt = require(params.get("prompt"), "prompt")
    fake.misbehave("images")
    _obey_markers(fake, prompt)
    if model in RETIRED_MODELS or not (
        model.startswith("gpt-image-2") or model in STANDARD_SIZE_MODELS
    ):
        raise ApiError(
            404,
            f"The model '{model}' does not exist or you do not have access to it.",
            code="model_not_found",
        )
    if "response_format" in params:
        raise ApiError(
            400,
            "Unknown parameter: 'response_format'.",
            param="response_format",
            code="unknown_parameter",
        )
    refuse_streaming(params)
    size = params.get("size") or "auto"
    width, height = _resolve_size(model, size)
    count = _count(params.get("n", 1))
    output_format = params.get("output_format") or "png"
    if output_format not in OUTPUT_FORMATS:
        raise ApiError(
            400,
            f"Invalid value: '{output_format}'. Supported values are: 'png', 'jpeg' and 'webp'.",
            param="output_format",
            code="invalid_value",
        )
    transparent = params.get("background") == "transparent"
    if transparent and output_format == "jpeg":
        raise ApiError(
            400,
            "Transparent background requires output_format png or webp.",
            param="background",
        )
    if "[fake:moderation]" in prompt:
        raise moderation_blocked()
    images = [
        _render(f"{index}:{prompt}", width, height, output_format, transparent)
        for index in range(count)
    ]
    text_tokens = len(prompt.split())
    image_tokens = 272 * references
    output_tokens = 196 * count
    quality = params.get("quality")
    return {
        "created": int(time.time()),
        "background": "transparent" if transparent else "opaque",
        "data": [{"b64_json": base64.b64encode(image).decode()} for image in images],
        "output_format": output_format,
        "quality": quality if quality in ("low", "medium", "high", "xhigh", "max") else "medium",
        "size": f"{width}x{height}",
        "usage": {
            "input_tokens": text_tokens + image_tokens,
            "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
            "output_tokens": output_tokens,
            "total_tokens": text_tokens + image_tokens + output_tokens,
        },
    }


def _obey_markers(fake: FakeOpenAI, prompt: str) -> None:
    """Slow down or fail as the markers of an image prompt say."""
    slow = SLOW_MARKER.search(prompt)
    if slow:
        fake.sleep(float(slow.group(1)))
    if "[fake:500]" in prompt:
        raise http_fault(500)
    if "[fake:429]" in prompt:
        raise http_fault(429)


def _multipart(headers: Message, body: bytes) -> tuple[dict[str, Any], list]:
    """Form fields and ``(field, content type, bytes)`` of the image parts."""
    mimetype, options = parse_options_header(headers.get("Content-Type", ""))
    if mimetype != "multipart/form-data":
        raise ApiError(400, "The request body must be multipart/form-data.")
    parser = FormDataParser(max_form_memory_size=1024 * 1024, max_form_parts=64, silent=False)
    try:
        _, form, files = parser.parse(io.BytesIO(body), mimetype, len(body), options)
    except (ValueError, RequestEntityTooLarge) as error:
        raise ApiError(400, f"Malformed multipart body: {error}") from error
    images = [
        (name, part.mimetype, part.read())
        for name, part in files.items(multi=True)
        if IMAGE_FIELD.fullmatch(name)
    ]
    return form.to_dict(), images


def _summary(params: dict[str, Any], images: list) -> dict[str, Any]:
    return {
        "model": params.get("model"),
        "prompt": params.get("prompt"),
        "size": params.get("size"),
        "n": params.get("n"),
        "quality": params.get("quality"),
        "output_format": params.get("output_format"),
        "reference_images": len(images),
        "reference_content_types": [content_type for _, content_type, _ in images],
        "reference_bytes": [len(data) for _, _, data in images],
    }


def _reference_size(name: str, content_type: str, data: bytes) -> list[int]:
    """The (width, height) of a reference image, refused as the real API refuses it."""
    if content_type not in IMAGE_TYPES:
        raise ApiError(
            400,
            f"Invalid file '{name}': unsupported mimetype ('{content_type}'). Supported file "
            "formats are 'image/jpeg', 'image/png', and 'image/webp'.",
            param=name,
            code="unsupported_file_mimetype",
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            return list(image.size)
    except Exception as error:
        raise ApiError(400, f"Invalid image file '{name}'.", param=name) from error


def _resolve_size(model: str, size: object) -> tuple[int, int]:
    if size == "auto":
        return 1024, 1024
    match = SIZE.fullmatch(size) if isinstance(size, str) else None
    width, height = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    long_edge, short_edge = max(width, height), min(width, height)
    if model.startswith("gpt-image-2"):
        valid = (
            width % 16 == height % 16 == 0
            and short_edge >= MIN_EDGE
            and long_edge <= 3 * short_edge
            and long_edge <= MAX_LONG_EDGE
            and short_edge <= MAX_SHORT_EDGE
        )
        rule = (
            "width and height divisible by 16, aspect ratio between 1:3 and 3:1, "
            f"edges from {MIN_EDGE} up to {MAX_LONG_EDGE}x{MAX_SHORT_EDGE}, or 'auto'"
        )
    else:
        valid = size in STANDARD_SIZES
        rule = "'1024x1024', '1536x1024', '1024x1536' or 'auto'"
    if not valid:
        raise ApiError(
            400,
            f"Invalid size '{size}' for model '{model}'. Supported: {rule}.",
            param="size",
            code="invalid_value",
        )
    return width, height


def _count(value: object) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if type(value) is not int or not 1 <= value <= 10:
        raise ApiError(
            400, "Invalid value for 'n': must be between 1 and 10.", param="n", code="invalid_value"
        )
    return value


def _render(seed: str, width: int, height: int, output_format: str, transparent: bool) -> bytes:
    """A cheap gradient between two colours derived from ``seed``, encoded."""
    digest = hashlib.sha256(seed.encode()).digest()
    mode = "RGBA" if transparent else "RGB"
    ends = Image.new(mode, (2, 1))
    ends.putdata([(*digest[0:3], 0)[: len(mode)], (*digest[3:6], 255)[: len(mode)]])
    image = ends.resize((width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, OUTPUT_FORMATS[output_format], compress_level=1, quality=85, method=0)
    return out.getvalue()
