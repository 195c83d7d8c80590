"""Uploads without a network: object names, reconcile paging, signed URLs and request limits."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from shared import config
from shared.errors import ConfigError
from shared.uploads import routes as upload_routes
from shared.uploads.reconcile import batches, listed
from shared.uploads.registration import owner_and_file_name
from shared.web.dispatch import dispatch
from shared.web.router import Router
from tools.fixtures import images as make
from tools.stack import keys

USER = {"id": uuid.UUID("6f1c2b9e-3d4a-4e5f-8a7b-1c2d3e4f5a6b"), "auth_subject": "alice"}


def write_signing_key(path: Path) -> Path:
    """A throwaway service-account key file, enough to sign V4 URLs offline."""
    return keys.ensure_signing_credentials(path, "local-project")


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Settings without a reachable database, a signing key, and a caller to dispatch with."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("UPLOAD_MAX_BYTES", "50000")
    monkeypatch.setenv("SIGNING_CREDENTIALS_FILE", str(write_signing_key(tmp_path / "key.json")))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    config.settings.cache_clear()
    router = Router()
    router.include(upload_routes.routes)

    def call(method: str, path: str, environ: Any = None, **builder: Any) -> tuple[int, Any]:
        built = EnvironBuilder(method=method, path=path, **builder).get_environ()
        request = Request({**built, **(environ or {})})
        response = dispatch(router, request, lambda _: USER)
        return response.status_code, json.loads(response.get_data() or b"null")

    yield call
    config.settings.cache_clear()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"uploads/{USER['id']}/20261130T101112123456Z_cat.jpg", (str(USER["id"]), "cat.jpg")),
        (f"uploads/{USER['id']}/dog photo.png", (str(USER["id"]), "dog_photo.png")),
        (
            f"uploads/{USER['id']}/20261130T101112123456Z_",
            (str(USER["id"]), "20261130T101112123456Z_"),
        ),
        (f"uploads/{USER['id']}/", None),
        (f"uploads/{USER['id']}/a/b.jpg", None),
        (f"uploads/{str(USER['id']).upper()}/x.jpg", None),
        ("uploads/not-a-uuid/x.jpg", None),
        ("uploads/x.jpg", None),
        (f"generated/{USER['id']}/x.jpg", None),
    ],
)
def test_owner_and_file_name(name: str, expected: tuple[str, str] | None) -> None:
    assert owner_and_file_name(name) == expected


def test_upload_formats_are_configurable_and_checked() -> None:
    base = {"DATABASE_URL": "postgresql://u@127.0.0.1/db"}
    assert config.load(base).uploads.formats == ("JPEG", "PNG", "WEBP")
    assert config.load({**base, "UPLOAD_FORMATS": " png, webp,png"}).uploads.formats == (
        "PNG",
        "WEBP",
    )
    for bad in ("GIF", ",", "JPEG;PNG"):
        with pytest.raises(ConfigError, match="UPLOAD_FORMATS"):
            config.load({**base, "UPLOAD_FORMATS": bad})


def test_signed_url_refuses_a_format_that_is_switched_off(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPLOAD_FORMATS", "PNG")
    config.settings.cache_clear()
    ticket = {"file_name": "a.jpg", "mime_type": "image/jpeg", "file_size": 5}
    status, body = api("POST", "/v1/uploads/signed-url", json=ticket)
    assert (status, body["error"]["details"]["allowed"]) == (415, ["image/png"])


class FakePager:
    """Pages of a list with real tokens, like GCS; records the tokens it was asked for."""

    def __init__(self, items: list[int], page_size: int, tokens: bool = True) -> None:
        self.pages = [items[i : i + page_size] for i in range(0, len(items), page_size)] or [[]]
        self.tokens = tokens
        self.asked: list[str | None] = []

    def __call__(self, token: str | None) -> tuple[list[int], str | None]:
        self.asked.append(token)
        index = int(token) if token else 0
        following = str(index + 1) if self.tokens and index + 1 < len(self.pages) else None
        return self.pages[index], following


def test_listing_follows_page_tokens_to_the_end() -> None:
    pager = FakePager(list(range(10)), page_size=3)
    assert list(listed(pager)) == list(range(10))
    assert pager.asked == [None, "1", "2", "3"]


def test_listing_without_tokens_reads_one_page_like_the_emulator() -> None:
    pager = FakePager(list(range(10)), page_size=100, tokens=False)
    assert list(listed(pager)) == list(range(10))
    assert pager.asked == [None]


def test_listing_stops_when_a_token_repeats() -> None:
    asked: list[str | None] = []

    def stuck(token: str | None) -> tuple[list[int], str | None]:
        asked.append(token)
        return [len(asked)], "same"

    assert list(listed(stuck)) == [1, 2]
    assert asked == [None, "same"]


def test_batches_are_full_but_the_last() -> None:
    assert [len(b) for b in batches(listed(FakePager(list(range(10)), 4)), 3)] == [3, 3, 3, 1]
    assert list(batches([], 3)) == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"file_name": "a.jpg", "mime_type": "image/jpeg", "file_size": "5"}, 400, "invalid_input"),
        ({"file_name": "a.jpg", "mime_type": "image/jpeg", "file_size": 0}, 400, "invalid_input"),
        ({"file_name": "", "mime_type": "image/jpeg", "file_size": 5}, 400, "invalid_input"),
        (  # the document's pattern says so too
            {"file_name": "a\x00.jpg", "mime_type": "image/jpeg", "file_size": 5},
            400,
            "invalid_input",
        ),
        (
            {"file_name": "a.jpg", "mime_type": "image/jpeg", "file_size": 5, "session_id": "x"},
            400,
            "invalid_input",
        ),
        ({"file_name": "a.jpg", "mime_type": "image/jpeg", "file_size": 5, "x": 1}, 400, None),
        ({"file_name": "a.gif", "mime_type": "image/gif", "file_size": 5}, 400, "invalid_input"),
        ({"file_name": "a.jpg", "mime_type": "image/jpeg", "file_size": 50001}, 413, None),
        (  # past what the document says any deployment accepts
            {"file_name": "a.jpg", "mime_type": "image/jpeg", "file_size": 20 * 1024 * 1024 + 1},
            400,
            "invalid_input",
        ),
    ],
)
def test_signed_url_refuses_bad_requests(
    api: Any, body: dict[str, Any], status: int, code: str | None
) -> None:
    got, answer = api("POST", "/v1/uploads/signed-url", json=body)
    assert got == status, answer
    assert set(answer["error"]) >= {"code", "message"}
    if code:
        assert answer["error"]["code"] == code


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the body was read")


def test_multipart_too_large_is_refused_before_reading(api: Any) -> None:
    status, body = api(
        "POST",
        "/v1/uploads",
        content_type="multipart/form-data; boundary=x",
        environ={"wsgi.input": Unreadable(), "CONTENT_LENGTH": str(10**9)},
    )
    assert (status, body["error"]["code"]) == (413, "payload_too_large")


def _form(data: bytes, name: str = "a.jpg", **fields: Any) -> dict[str, Any]:
    return {"data": {"file": (io.BytesIO(data), name), **fields}}


@pytest.mark.parametrize(
    ("builder", "status", "reason"),
    [
        (_form(make.text_renamed_jpg()), 415, "unsupported_format"),
        (_form(make.gif()), 415, "unsupported_format"),
        (_form(make.truncated(make.jpeg())), 422, "truncated"),
        (_form(b""), 422, "empty"),
        (_form(make.png_bomb()), 422, "too_many_pixels"),
        (_form(make.jpeg_huge_sof()), 422, "too_many_pixels"),
        (_form(make.png_animated()), 422, "animated"),
        (_form(make.png(400, 300)), 413, None),  # about 360 KB against UPLOAD_MAX_BYTES 50000
        (_form(make.jpeg(), session_id="not-a-uuid"), 400, None),
        (_form(make.jpeg(), session_id=""), 400, None),  # given, and not a uuid
        (_form(make.jpeg(), session_id="null"), 400, None),
        (_form(make.jpeg(), title="x"), 400, None),  # the form has two fields
        (_form(make.jpeg(), session_id=[str(uuid.uuid4())] * 2), 400, None),
        ({"data": {"file": [(io.BytesIO(make.jpeg()), "a.jpg")] * 2}}, 400, None),
        (
            {"data": {"session_id": str(uuid.uuid4())}, "content_type": "multipart/form-data"},
            400,
            None,
        ),
        ({"json": {"file": "a.jpg"}}, 415, None),
    ],
)
def test_multipart_refusals(api: Any, builder: dict[str, Any], status: int, reason: str) -> None:
    got, body = api("POST", "/v1/uploads", **builder)
    assert got == status, body
    if reason:
        assert body["error"]["details"]["reason"] == reason


def test_multipart_with_too_many_parts_is_invalid_input(api: Any) -> None:
    """More parts than the form has fields: a schema violation, whatever the parser's limit."""
    fields = {f"f{i}": "x" for i in range(10)}
    got, body = api("POST", "/v1/uploads", **_form(make.jpeg(), **fields))
    assert (got, body["error"]["code"]) == (400, "invalid_input")
