"""The console's origin (tools/stack/console.py) and its generation form (web/index.html): the
form offers exactly what the API accepts, the sign-in mints tokens the API verifies, and the page
may reach the api and the bucket, nothing else."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import requests
from google.auth import jwt

from infra import manifest
from shared import vocabulary
from shared.config import firebase_issuer
from tools.stack import console, issuer, keys
from tools.stack.config import StackConfig

SPEC = manifest.load()
SCHEMA = json.loads((manifest.ROOT / "openapi" / "openapi.json").read_text())
REQUEST = SCHEMA["components"]["schemas"]["GenerationRequest"]["properties"]


class Form(HTMLParser):
    """The generation form's fields: name -> attributes, and each select's option values."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.fields: dict[str, dict[str, Any]] = {}
        self.options: dict[str, list[str]] = {}
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.inside = attributes.get("id") == "generate"
        elif self.inside and tag in ("input", "select", "textarea"):
            name = str(attributes["name"])
            self.fields[name] = {"tag": tag, **attributes}
            if tag == "select":
                self.select = name
                self.options[name] = []
        elif self.inside and tag == "option" and self.select:
            self.options[self.select].append(str(attributes["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None


def generation_form() -> Form:
    form = Form()
    form.feed((console.WEB / "index.html").read_text())
    return form


def test_the_generation_form_has_every_parameter_of_a_generation_request() -> None:
    form = generation_form()
    asked = set(REQUEST) - {"session_id", "reference_image_ids"}  # the selection gives these
    assert set(form.fields) == asked


def test_the_form_offers_exactly_the_vocabularies_and_bounds_the_api_accepts() -> None:
    form = generation_form()
    assert form.options["shot_type"] == ["", *vocabulary.SHOT_TYPES]
    assert form.options["camera_angle"] == ["", *vocabulary.CAMERA_ANGLES]
    assert form.options["style"] == ["", *vocabulary.STYLES]
    assert form.options["aspect_ratio"] == list(vocabulary.ASPECT_RATIOS)
    shots = form.fields["number_of_shots"]
    bounds = REQUEST["number_of_shots"]
    assert (int(shots["min"]), int(shots["max"])) == (bounds["minimum"], bounds["maximum"])
    assert int(form.fields["prompt"]["maxlength"]) == REQUEST["prompt"]["maxLength"]
    for name in ("location", "lighting", "weather", "webhook"):
        longest = REQUEST[name]["anyOf"][0]["maxLength"]
        assert int(form.fields[name]["maxlength"]) == longest, name
    assert form.options["webhook_events"] == list(vocabulary.WEBHOOK_EVENTS)


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[tuple[str, StackConfig]]:
    """The console's server on a free port, with a fresh issuer key."""
    config = StackConfig.from_env(SPEC, {"STACK_DIR": str(tmp_path)})
    config.keys.mkdir(parents=True)
    server = console.server(config, SPEC, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", config
    finally:
        server.shutdown()
        server.server_close()


def test_sign_in_mints_a_firebase_shaped_token_for_the_named_user(
    origin: tuple[str, StackConfig],
) -> None:
    url, config = origin
    answer = requests.get(f"{url}/local/token", params={"user": "alice"}, timeout=5)
    assert answer.status_code == 200
    body = answer.json()
    key = keys.issuer_key(config.keys)
    claims = jwt.decode(body["token"], certs=issuer.certificates(key), audience=config.project)
    assert claims["iss"] == firebase_issuer(config.project)
    assert claims["name"] == "alice" and claims["sub"] == body["user_id"]
    assert body["user_id"] == issuer.user_id("alice")  # the same uid as `make token USER=alice`


@pytest.mark.parametrize("user", ["", "a b", "x" * 65, "<script>"])
def test_sign_in_refuses_a_name_that_is_not_a_plain_user_name(
    origin: tuple[str, StackConfig], user: str
) -> None:
    url, _ = origin
    answer = requests.get(f"{url}/local/token", params={"user": user}, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_user"


def test_the_page_may_reach_the_api_and_the_bucket_and_nothing_else(
    origin: tuple[str, StackConfig],
) -> None:
    url, config = origin
    page = requests.get(f"{url}/", timeout=5)
    settings = requests.get(f"{url}/config.json", timeout=5).json()

    assert page.status_code == 200 and 'src="js/main.js"' in page.text
    assert settings == {"api_url": config.api_url(SPEC)}
    policy = dict(
        part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["connect-src"] == f"'self' {config.api_url(SPEC)} {config.storage_host}"
    assert policy["img-src"] == f"'self' {config.storage_host}"
    assert page.headers["Cache-Control"] == "no-store"
    assert requests.get(f"{url}/js/", timeout=5).status_code == 404  # no folder listings
