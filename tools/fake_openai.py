"""A local OpenAI-compatible fake server for tests, benchmarks and the local stack.

It answers the real ``openai`` client (pointed at it through ``base_url`` or
``OPENAI_BASE_URL``) on ``/v1/chat/completions``, ``/v1/images/generations`` and
``/v1/images/edits`` with the real API's response and error shapes, and renders cheap
gradients of the requested size and format.

Faults come two ways. The control API, for a test that owns the fake (the same methods
exist on ``FakeOpenAI``):

* ``POST /_fake/config`` ``{"latency_seconds": 2.0}``: latency added to every model call;
* ``POST /_fake/faults`` ``[{"endpoint": "images"|"chat"|"any", "kind": "http"|
  "moderation_blocked"|"timeout", "status": 400|429|500|503, "times": 1,
  "retry_after": 0.1, "seconds": 3.0}]``: faults queued in order, each answered to the next
  ``times`` calls of its endpoint (a timeout sleeps ``seconds``, then answers);
* ``GET /_fake/requests``: the recorded model calls; ``POST /_fake/reset``: forget all.

Markers in an image prompt, for callers sharing one fake process: ``[fake:moderation]``
(400 ``moderation_blocked``), ``[fake:500]``, ``[fake:429]`` (every attempt) and
``[fake:slow=SECONDS]``. The chat answer keeps the user's text, so a marker given to the
prompt enhancer reaches the image call.

Run: ``python tools/fake_openai.py --host 127.0.0.1 --port 8790``.
Use: ``with FakeOpenAI() as fake: OpenAI(base_url=fake.base_url, api_key="test")``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, fields
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from PIL import Image
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.http import parse_options_header

MAX_BODY_BYTES = 64 * 1024 * 1024
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
# status -> (type, code, message) of the real API's answer to that status
HTTP_FAULTS = {
    400: ("invalid_request_error", None, "Injected invalid request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}


class ApiError(Exception):
    """An error answered with the OpenAI error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.body = {
            "error": {
                "message": message,
                "type": type_,
                "param": param,
                "code": code,
                **(details or {}),
            }
        }


def http_fault(status: int, retry_after: float | None = None) -> ApiError:
    """The real API's error for ``status``, with ``retry-after`` when given."""
    type_, code, message = HTTP_FAULTS[status]
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return ApiError(status, message, type_=type_, code=code, headers=headers)


def moderation_blocked() -> ApiError:
    """The refusal of the image safety system (``image_generation_user_error``)."""
    return ApiError(
        400,
        "Your request was rejected by the safety system.",
        type_="image_generation_user_error",
        code="moderation_blocked",
        details={"moderation_details": {"moderation_stage": "input", "categories": ["other"]}},
    )


@dataclass
class Fault:
    """A scripted fault, answered to the next ``times`` calls of ``endpoint``."""

    endpoint: str = "any"
    status: int = 500
    times: int = 1
    kind: str = "http"
    retry_after: float | None = None
    seconds: float = 0.0

    @classmethod
    def from_json(cls, raw: object) -> Fault:
        """Validate one fault of the control API."""
        names = {field.name for field in fields(cls)}
        if not isinstance(raw, dict) or not set(raw) <= names:
            raise ValueError(f"a fault is an object with keys among {sorted(names)}: {raw!r}")
        fault = cls(**raw)
        if fault.endpoint not in ("images", "chat", "any"):
            raise ValueError(f"endpoint must be images, chat or any: {raw!r}")
        if fault.kind not in ("http", "moderation_blocked", "timeout"):
            raise ValueError(f"kind must be http, moderation_blocked or timeout: {raw!r}")
        if fault.kind == "timeout" and not fault.seconds:
            raise ValueError(f"a timeout needs seconds > 0: {raw!r}")
        if fault.kind == "http" and fault.status not in HTTP_FAULTS:
            raise ValueError(f"status must be one of {sorted(HTTP_FAULTS)}: {raw!r}")
        if type(fault.times) is not int or fault.times < 1:
            raise ValueError(f"times must be a positive integer: {raw!r}")
        if not all(_is_seconds(value) for value in (fault.seconds, fault.retry_after or 0)):
            raise ValueError(f"seconds and retry_after must be numbers >= 0: {raw!r}")
        return fault


class FakeOpenAI:
    """The fake on a background thread: a context manager, or ``start()`` then ``close()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, log_requests: bool = False):
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._latency = 0.0
        self._faults: list[Fault] = []
        self._records: list[dict[str, Any]] = []
        self._server = _Server((host, port), self, log_requests)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's root, where ``/_fake`` lives."""
        return f"http://{self._server.server_address[0]!s}:{self._server.server_port}"

    @property
    def base_url(self) -> str:
        """The ``base_url`` for the openai client."""
        return f"{self.url}/v1"

    def start(self) -> FakeOpenAI:
        """Serve on a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; requests still sleeping wake up and answer 503."""
        self._closing.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def configure(self, *, latency_seconds: float) -> dict[str, float]:
        """Set the latency added to every model call."""
        if not _is_seconds(latency_seconds):
            raise ValueError(f"latency_seconds must be a number >= 0: {latency_seconds!r}")
        with self._lock:
            self._latency = float(latency_seconds)
        return {"latency_seconds": self._latency}

    def add_faults(self, faults: list[dict[str, Any]]) -> int:
        """Queue scripted faults after those pending; return how many are pending."""
        if not isinstance(faults, list):
            raise ValueError("faults are a JSON list")
        parsed = [Fault.from_json(raw) for raw in faults]
        with self._lock:
            self._faults.extend(parsed)
            return len(self._faults)

    def requests(self) -> list[dict[str, Any]]:
        """Copies of the recorded model calls, oldest first."""
        with self._lock:
            return json.loads(json.dumps(self._records))

    def reset(self) -> None:
        """Forget latency, pending faults and recorded requests."""
        with self._lock:
            self._latency = 0.0
            self._faults.clear()
            self._records.clear()

    def _dispatch(
        self, method: str, path: str, headers: Message, body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one request: status, JSON body and extra headers."""
        route = (method, urlsplit(path).path)
        try:
            if route[1].startswith("/_fake/"):
                return 200, self._control(route, body), {}
            if route in MODEL_ROUTES:
                return 200, self._model_call(route, headers, body), {}
            raise ApiError(404, f"Invalid URL ({method} {route[1]})")
        except ApiError as error:
            return error.status, error.body, error.headers

    def _control(self, route: tuple[str, str], body: bytes) -> dict[str, Any]:
        try:
            match route:
                case ("GET", "/_fake/requests"):
                    return {"requests": self.requests()}
                case ("POST", "/_fake/reset"):
                    self.reset()
                    return {"reset": True}
                case ("POST", "/_fake/config"):
                    return self.configure(**_json(body))
                case ("POST", "/_fake/faults"):
                    return {"pending": self.add_faults(_json(body))}
        except (TypeError, ValueError) as error:
            raise ApiError(400, str(error)) from error
        raise ApiError(404, f"Invalid URL ({route[0]} {route[1]})")

    def _model_call(self, route: tuple[str, str], headers: Message, body: bytes) -> dict[str, Any]:
        record: dict[str, Any] = {
            "method": route[0],
            "path": route[1],
            "time": time.time(),
            "headers": {k.lower(): v for k, v in headers.items() if k.lower() != "authorization"},
            "status": None,
        }
        with self._lock:
            self._records.append(record)
        try:
            _authorize(headers)
            answer = MODEL_ROUTES[route](self, headers, body, record)
        except ApiError as error:
            self._note(record, status=error.status)
            raise
        self._note(record, status=200)
        return answer

    def _note(self, record: dict[str, Any], **values: Any) -> None:
        with self._lock:
            record.update(values)

    def _misbehave(self, endpoint: str) -> None:
        """Wait the configured latency, then apply the next scripted fault for ``endpoint``."""
        with self._lock:
            latency = self._latency
            fault = next((f for f in self._faults if f.endpoint in (endpoint, "any")), None)
            if fault is not None:
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
        self._sleep(latency)
        if fault is None:
            return
        if fault.kind == "timeout":
            self._sleep(fault.seconds)
        elif fault.kind == "moderation_blocked":
            raise moderation_blocked()
        else:
            raise http_fault(fault.status, fault.retry_after)

    def _obey_markers(self, prompt: str) -> None:
        """Slow down or fail as the markers of an image prompt say."""
        slow = SLOW_MARKER.search(prompt)
        if slow:
            self._sleep(float(slow.group(1)))
        if "[fake:500]" in prompt:
            raise http_fault(500)
        if "[fake:429]" in prompt:
            raise http_fault(429)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self._closing.wait(seconds):
            raise http_fault(503)

    def _chat(self, headers: Message, body: bytes, record: dict[str, Any]) -> dict[str, Any]:
        params = _json_object(body)
        model, messages = params.get("model"), params.get("messages")
        text = _user_text(messages)
        self._note(record, model=model, prompt=text)
        _require(model, "model")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "Missing required parameter: 'messages'.", param="messages")
        _refuse_streaming(params)
        self._misbehave("chat")
        content = f"Cinematic, {text}, dramatic lighting, shallow depth of field, 35mm film grain"
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

    def _generate(self, headers: Message, body: bytes, record: dict[str, Any]) -> dict[str, Any]:
        params = _json_object(body)
        self._note(record, **_summary(params, []))
        return self._image_answer(params, references=0)

    def _edit(self, headers: Message, body: bytes, record: dict[str, Any]) -> dict[str, Any]:
        params, images = _multipart(headers, body)
        self._note(record, **_summary(params, images))
        if not images:
            raise ApiError(400, "Missing required parameter: 'image'.", param="image")
        if len(images) > MAX_REFERENCE_IMAGES:
            raise ApiError(400, f"At most {MAX_REFERENCE_IMAGES} images.", param="image")
        for name, content_type, data in images:
            _check_reference(name, content_type, data)
        return self._image_answer(params, references=len(images))

    def _image_answer(self, params: dict[str, Any], references: int) -> dict[str, Any]:
        """Validate an image request as the real API does, then render its images."""
        model = _require(params.get("model"), "model")
        prompt = _require(params.get("prompt"), "prompt")
        self._misbehave("images")
        self._obey_markers(prompt)
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
        _refuse_streaming(params)
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
            "quality": quality
            if quality in ("low", "medium", "high", "xhigh", "max")
            else "medium",
            "size": f"{width}x{height}",
            "usage": {
                "input_tokens": text_tokens + image_tokens,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
                "output_tokens": output_tokens,
                "total_tokens": text_tokens + image_tokens + output_tokens,
            },
        }


MODEL_ROUTES = {
    ("POST", "/v1/chat/completions"): FakeOpenAI._chat,
    ("POST", "/v1/images/generations"): FakeOpenAI._generate,
    ("POST", "/v1/images/edits"): FakeOpenAI._edit,
}


def _is_seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _authorize(headers: Message) -> None:
    scheme, _, key = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as error:
        raise ApiError(400, "We could not parse the JSON body of your request.") from error


def _json_object(body: bytes) -> dict[str, Any]:
    params = _json(body)
    if not isinstance(params, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return params


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
    }


def _check_reference(name: str, content_type: str, data: bytes) -> None:
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
    except Exception as error:
        raise ApiError(400, f"Invalid image file '{name}'.", param=name) from error


def _require(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ApiError(
            400,
            f"Missing required parameter: '{name}'.",
            param=name,
            code="missing_required_parameter",
        )
    return value


def _refuse_streaming(params: dict[str, Any]) -> None:
    if params.get("stream") in (True, "true"):
        raise ApiError(400, "The fake does not stream.", param="stream")


def _user_text(messages: object) -> str:
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: FakeOpenAI, log_requests: bool) -> None:
        self.fake = fake
        self.log_requests = log_requests
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away (a client timeout); report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection frees its thread after this
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if "Transfer-Encoding" in self.headers or not length.isdigit():
            self.close_connection = True
            self._send(411, ApiError(411, "A Content-Length is required.").body, {})
            return
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, ApiError(413, "The request body is too large.").body, {})
            return
        body = self.rfile.read(int(length))
        self._send(*self.server.fake._dispatch(self.command, self.path, self.headers, body))

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with FakeOpenAI(args.host, args.port, log_requests=True) as fake:
        print(f"fake-openai ready on {fake.base_url}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
