"""Structured logging in Cloud Logging's shape, with context and redaction."""

from __future__ import annotations

import json

from shared import log


def _lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_json_line_with_severity_action_and_bound_context(capsys):
    with log.bind(function="render_image", job_id="j1"):
        log.info("rendered", action="render.done", index=2)
    log.warning("outside")
    first, second = _lines(capsys)
    assert first["severity"] == "INFO" and first["message"] == "rendered"
    assert (first["action"], first["function"], first["job_id"], first["index"]) == (
        "render.done",
        "render_image",
        "j1",
        2,
    )
    assert "job_id" not in second and second["severity"] == "WARNING"


def test_trace_field_from_cloud_trace_header():
    assert log.trace_field("105445aa7843bc8bf206b12000100000/1;o=1", "proj") == {
        "logging.googleapis.com/trace": "projects/proj/traces/105445aa7843bc8bf206b12000100000"
    }
    assert log.trace_field(None, "proj") == {}
    assert log.trace_field("not a trace!", "proj") == {}


def test_secrets_are_redacted(capsys):
    log.info(
        "url https://x/y?X-Goog-Signature=abcdef0123 and Bearer eyJhbGciOi.abc.def",
        key="sk-proj-ABCDEFGHIJKLMNOP",
    )
    (line,) = _lines(capsys)
    text = json.dumps(line)
    assert "abcdef0123" not in text and "eyJhbGciOi" not in text and "ABCDEFGHIJ" not in text
    assert "[redacted]" in line["message"]


def test_error_carries_the_stack_trace(capsys):
    try:
        raise ValueError("boom")
    except ValueError as exc:
        log.error("failed", action="x.failed", exc=exc)
    (line,) = _lines(capsys)
    assert line["severity"] == "ERROR" and "ValueError: boom" in line["stack_trace"]
