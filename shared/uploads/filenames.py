"""Turn a client's file name into a safe, readable last part of a GCS object name."""

from __future__ import annotations

import re
import unicodedata

FALLBACK_STEM = "image"
_MIN_BYTES = 16  # room for the fallback stem and the longest extension kept
# Control, format (bidi overrides, zero-width), surrogate, private-use, unassigned.
_DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
_ASCII_KEPT = set("-_.()+,=@~!")
# Non-ASCII categories kept: letters, marks, numbers, currency, modifier and other symbols
# (emoji and their skin tones), connector and dash punctuation. Math symbols (fullwidth `<`),
# quotes and other punctuation (fullwidth `#`, `%`, `/`) become `_`.
_UNICODE_KEPT = ("L", "M", "N", "Sc", "Sk", "So", "Pc", "Pd")
_WHITESPACE = re.compile(r"\s+")
_DOTS = re.compile(r"\.{2,}")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}\Z")


def sanitize_filename(name: str, max_bytes: int = 120) -> str:
    """A deterministic, idempotent, readable file name of at most `max_bytes` UTF-8 bytes.

    Keeps the last path component (`/` or `\\`), unicode letters and the extension; drops control
    and format characters and `..`; turns whitespace runs and URL-awkward characters into `_`;
    never starts with a dot or a dash; falls back to "image" (plus the extension).
    """
    if max_bytes < _MIN_BYTES:
        raise ValueError(f"max_bytes must be at least {_MIN_BYTES}")
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _WHITESPACE.sub("_", name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    name = unicodedata.normalize("NFC", name)  # dropping a character can join its neighbours
    name = "".join(ch if _kept(ch) else "_" for ch in name)
    name = _DOTS.sub(".", name).lstrip(".-").rstrip(".")
    match = _EXTENSION.search(name)
    extension = match.group() if match else ""
    stem = name[: len(name) - len(extension)]
    budget = max_bytes - len(extension.encode())
    stem = stem.encode()[:budget].decode("utf-8", "ignore").rstrip(".")
    return (stem or FALLBACK_STEM) + extension


def _kept(ch: str) -> bool:
    if ch.isascii():
        return ch.isalnum() or ch in _ASCII_KEPT
    return unicodedata.category(ch).startswith(_UNICODE_KEPT)
