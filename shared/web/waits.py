"""Waiting instead of polling: `Prefer: wait=N`, ETags and blocking reads.

- `POST /v1/generations` with `Prefer: wait=N` (RFC 7240, N seconds, at most 60) answers as soon
  as the job finishes (200), else 202 once N seconds pass (Replicate's sync mode).
- A job or a session carries a weak `ETag`. With `If-None-Match` (RFC 9110) a GET answers 304
  while the resource still has that version; with `Prefer: wait=N` too, it answers as soon as the
  resource differs, or 304 after N seconds (a blocking read). `Preference-Applied: wait=N` says
  the request waited.

A waiting request holds no database connection: it reads in a short transaction, then sleeps
on its key's subscription (shared/changes.py) until the key is notified, RECHECK_SECONDS pass,
or its time is up, and reads again.

Each header's syntax is one regular expression, written so that every input has one parse (no
backtracking blow-up) and checked before the header is read: a header outside it, or longer
than 1024 characters, is a 400. Within it, RFC 7240 has a server ignore what it cannot comply
with: unknown preferences, and a `wait` that is not a positive whole number.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shared import changes
from shared.errors import InvalidInput
from shared.web.headers import Header
from shared.web.request import ApiRequest

S = TypeVar("S")
MAX_WAIT_SECONDS = 60
ANY = "*"

_OWS = r"[ \t]*"
_TCHAR_RUN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e]|\\[\t \x21-\x7e])*"'
_VALUE = f"{_OWS}={_OWS}(?:{_TCHAR_RUN}|{_QUOTED})"
_PREFERENCE = f"{_TCHAR_RUN}(?:{_VALUE})?(?:{_OWS};(?:{_OWS}{_TCHAR_RUN}(?:{_VALUE})?)?)*"
# A list: empty elements may come anywhere, one element at least; space only after a comma or
# after an element, so that no run of spaces can be split two ways.
PREFER_SYNTAX = f"^{_OWS}(?:,{_OWS})*{_PREFERENCE}{_OWS}(?:,{_OWS}(?:{_PREFERENCE}{_OWS})?)*$"
_ENTITY_TAG = r'(?:W/)?"[\x21\x23-\x7e]*"'
IF_NONE_MATCH_SYNTAX = (
    f"^{_OWS}(?:\\*{_OWS}|(?:,{_OWS})*{_ENTITY_TAG}{_OWS}(?:,{_OWS}(?:{_ENTITY_TAG}{_OWS})?)*)$"
)
_ONE_PREFERENCE = re.compile(f"({_TCHAR_RUN})(?:{_OWS}={_OWS}({_TCHAR_RUN}|{_QUOTED}))?")

PREFER = Header(
    "Prefer",
    f"`wait=N`: wait up to N seconds for the answer (RFC 7240; more than {MAX_WAIT_SECONDS} "
    f"means {MAX_WAIT_SECONDS}). A `wait` that is not a positive whole number, and any other "
    "preference, is ignored (`Preference-Applied` says what was applied); a header outside "
    "RFC 7240's syntax is a 400.",
    max_length=1024,
)
IF_NONE_MATCH = Header(
    "If-None-Match",
    "An `ETag` of an earlier answer: 304 while the resource still has that version; with "
    "`Prefer: wait=N`, the answer comes as soon as it differs, or 304 after N seconds. `*` "
    "answers 304 at once. A header outside RFC 9110's syntax is a 400.",
    max_length=1024,
)
ETAG = Header("ETag", "The version of the resource (weak): send it back in `If-None-Match`.", 64)
PREFERENCE_APPLIED = Header(
    "Preference-Applied", "`wait=N` when the request waited for its answer.", 16
)


# What a route that reads blocking says of itself (Router.add's fields): it reads If-None-Match
# and Prefer, answers 304 when nothing changed, and tags its answers.
BLOCKING_READ: dict[str, Any] = {
    "also": (304,),
    "headers": (IF_NONE_MATCH, PREFER),
    "response_headers": (ETAG, PREFERENCE_APPLIED),
}


def _header(request: ApiRequest, header: Header, syntax: str) -> str | None:
    """The header's value (repeated fields joined), or None; 400 outside its syntax."""
    values = request.raw.headers.getlist(header.name)
    if not values:
        return None
    text = ", ".join(values)
    if len(text) > header.max_length or not re.fullmatch(syntax, text):
        raise InvalidInput(f"the {header.name} header is malformed", code="malformed_header")
    return text


def wait_seconds(request: ApiRequest) -> int | None:
    """The seconds of the first `wait` preference (the one RFC 7240 counts), at most
    MAX_WAIT_SECONDS; None without one, or when it is not a positive whole number."""
    text = _header(request, PREFER, PREFER_SYNTAX)
    for element in _elements(text or ""):
        preference = _ONE_PREFERENCE.match(element)
        if preference and preference.group(1).lower() == "wait":
            value = (preference.group(2) or "").strip('"')
            if value.isascii() and value.isdigit() and int(value) > 0:
                return min(int(value), MAX_WAIT_SECONDS)
            return None
    return None


def _elements(text: str) -> list[str]:
    """The elements of a list header whose syntax is checked: commas in quoted strings kept."""
    return [e.strip(" \t") for e in re.findall(rf'(?:[^,"]|{_QUOTED})+', text)]


def if_none_match(request: ApiRequest) -> frozenset[str] | None:
    """The entity tags of If-None-Match (weak or not: compared weakly), `{ANY}` for `*`."""
    text = _header(request, IF_NONE_MATCH, IF_NONE_MATCH_SYNTAX)
    if text is None:
        return None
    return frozenset(re.findall('"[^"]*"', text)) or frozenset({ANY})


def etag(*parts: Any) -> str:
    """A weak entity tag over JSON-able parts (equal parts, equal tag)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return f'W/"{hashlib.blake2b(text.encode(), digest_size=16).hexdigest()}"'


def matches(tag: str, wanted: frozenset[str]) -> bool:
    """Weak comparison of a tag with If-None-Match's."""
    return ANY in wanted or tag.removeprefix("W/") in wanted


def wait_until(key: str, read: Callable[[], S], done: Callable[[S], bool], seconds: float) -> S:
    """Read until `done` holds or `seconds` pass, reading again each time `key` changes (and
    every RECHECK_SECONDS); returns the last read. No connection is held between reads."""
    deadline = time.monotonic() + seconds
    with changes.listener().subscribe(key) as subscription:
        while True:
            state = read()
            remaining = deadline - time.monotonic()
            if done(state) or remaining <= 0:
                return state
            subscription.wait(min(remaining, changes.RECHECK_SECONDS))


@dataclass
class Read:
    """A conditional read's outcome: the resource's state, and whether the client has it."""

    state: Any
    not_modified: bool
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Conditions:
    """What a GET asks of its answer: If-None-Match's tags and Prefer's wait."""

    wanted: frozenset[str] | None
    seconds: int | None

    @classmethod
    def of(cls, request: ApiRequest) -> Conditions:
        """Both headers, parsed before anything else is done (malformed: 400)."""
        return cls(if_none_match(request), wait_seconds(request))

    def read(self, key: str, read: Callable[[], S], tag: Callable[[S], str]) -> Read:
        """The resource, honouring If-None-Match and, with it, Prefer: wait (a blocking read)."""
        wanted = self.wanted
        if wanted is None:
            state = read()
            return Read(state, False, {ETAG.name: tag(state)})
        if self.seconds is None or ANY in wanted:  # no wait asked, or nothing to wait for
            state = read()
            headers = {ETAG.name: tag(state)}
        else:
            state = wait_until(key, read, lambda s: not matches(tag(s), wanted), self.seconds)
            headers = {ETAG.name: tag(state), PREFERENCE_APPLIED.name: f"wait={self.seconds}"}
        return Read(state, matches(headers[ETAG.name], wanted), headers)
