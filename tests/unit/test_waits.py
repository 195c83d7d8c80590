"""Prefer and If-None-Match without a database: what parses, and garbage answered 400, never 500."""

from __future__ import annotations

import uuid

import pytest
from werkzeug.test import EnvironBuilder

from shared import routes
from shared.web import dispatch, waits
from shared.web.request import ApiRequest
from tests.apikit import body

pytestmark = pytest.mark.usefixtures("no_database", "api_env")
USER = {"id": str(uuid.uuid4())}


def _request(**headers: str) -> ApiRequest:
    return ApiRequest(raw=EnvironBuilder(headers=headers).get_request())


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("wait=5", 5),
        ("WAIT=60", 60),
        ('wait="12"', 12),
        ("respond-async, wait=3", 3),
        ("return=minimal; foo=bar, wait = 7 ;x", 7),
        ("wait=4, wait=9", 4),  # RFC 7240: the first one counts ...
        ("wait=4, wait=junk", 4),  # ... the others are ignored
        ("Wait=007", 7),
        ('foo="a, wait=5", wait=3', 3),  # a comma inside a quoted value separates nothing
        ("wait=61", 60),  # at most 60 s
        # RFC 7240: a server ignores a preference it cannot comply with, and says so by not
        # listing it in Preference-Applied.
        ("wait=abc", None),
        ("wait=0", None),
        ("wait=-1", None),
        ("wait=1.5", None),
        ("wait", None),
        ("wait=abc, wait=5", None),
        ("waits=5, wai=6", None),
        ("respond-async", None),
        ("handling=lenient,,", None),
        (",, respond-async", None),
    ],
)
def test_prefer_wait_is_read_as_rfc_7240_writes_it(header: str, seconds: int | None) -> None:
    assert waits.wait_seconds(_request(Prefer=header)) == seconds


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ('"abc"', {'"abc"'}),
        ('W/"abc", "d-e"', {'"abc"', '"d-e"'}),
        ('  W/"x" ,', {'"x"'}),
        ("*", {"*"}),
    ],
)
def test_if_none_match_lists_entity_tags(header: str, tags: set[str]) -> None:
    assert waits.if_none_match(_request(**{"If-None-Match": header})) == tags


def test_tags_compare_weakly_and_star_matches_any() -> None:
    tag = waits.etag({"status": "pending"}, [1, 2])
    assert tag.startswith('W/"') and tag == waits.etag({"status": "pending"}, [1, 2])
    assert tag != waits.etag({"status": "completed"}, [1, 2])
    assert waits.matches(tag, frozenset({tag.removeprefix("W/")}))
    assert waits.matches(tag, frozenset({"*"}))
    assert not waits.matches(tag, frozenset({'"other"'}))


GARBAGE = [
    ("Prefer", ""),
    ("Prefer", " , "),
    ("Prefer", "wait="),
    ("Prefer", "wait=٣"),  # a digit, but not an ASCII one
    ("Prefer", 'wait="5'),
    ("Prefer", "wait==5"),
    ("Prefer", "@@@"),
    ("Prefer", "wait=5 6"),
    ("Prefer", "wait=5;;=x"),
    ("Prefer", "wait=(5)"),
    ("Prefer", "x" * 1025),
    ("If-None-Match", "abc"),
    ("If-None-Match", 'W/abc"'),
    ("If-None-Match", '"a" "b"'),
    ("If-None-Match", '"a"b'),
    ("If-None-Match", ","),
    ("If-None-Match", '"é"'),
    ("If-None-Match", '*, "a"'),
    ("If-None-Match", 'w/"a"'),
]


READS = [f"/v1/generations/{uuid.uuid4()}", f"/v1/sessions/{uuid.uuid4()}"]
CASES = [("GET", path, name, value) for path in READS for name, value in GARBAGE]
CASES += [("POST", "/v1/generations", name, value) for name, value in GARBAGE if name == "Prefer"]


@pytest.mark.parametrize(("method", "path", "name", "value"), CASES)
def test_garbage_headers_are_400_before_the_database_is_touched(
    method: str, path: str, name: str, value: str
) -> None:
    request = EnvironBuilder(
        method=method, path=path, headers={name: value}, json={"prompt": "p"}
    ).get_request()
    # The database is down (no_database): a header read after it would answer 503.
    response = dispatch.dispatch(routes.router(), request, lambda _: USER)
    assert response.status_code == 400, body(response)
    assert body(response)["error"]["code"] == "malformed_header"
