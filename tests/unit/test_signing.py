"""Signed GET URLs for a page: cached per object, the missing ones signed concurrently within a
bound, each with the instant it expires."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared import config, storage


@pytest.fixture
def slow_signer(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """storage.signed_url replaced by a 20 ms signer that counts calls and the most in flight."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@127.0.0.1:9/unused")
    config.settings.cache_clear()
    seen = {"calls": 0, "in_flight": 0, "most": 0}
    lock = threading.Lock()

    def sign(name: str, **_: object) -> tuple[str, datetime]:
        with lock:
            seen["calls"] += 1
            seen["in_flight"] += 1
            seen["most"] = max(seen["most"], seen["in_flight"])
        time.sleep(0.02)
        with lock:
            seen["in_flight"] -= 1
        return f"https://signed/{name}", datetime.now(UTC) + timedelta(seconds=900)

    monkeypatch.setattr(storage, "signed_url", sign)
    storage.signed_urls.clear()
    yield seen
    storage.signed_urls.clear()
    config.settings.cache_clear()


def test_a_page_is_signed_concurrently_within_the_bound_and_then_served_from_the_cache(
    slow_signer: dict[str, int],
) -> None:
    names = [f"generated/job/{i}.jpg" for i in range(3 * storage.SIGNING_CONCURRENCY)]

    signed = storage.signed_get_urls(names + names[:5])  # a name twice is signed once

    assert list(signed) == names and slow_signer["calls"] == len(names)
    assert 1 < slow_signer["most"] <= storage.SIGNING_CONCURRENCY
    assert all(s.url == f"https://signed/{n}" for n, s in signed.items())
    assert all(s.expires_at > datetime.now(UTC) for s in signed.values())
    again = storage.signed_get_urls(reversed(names))
    assert slow_signer["calls"] == len(names)  # nothing signed twice
    assert again == signed


def test_one_missing_url_is_signed_in_the_caller_thread(
    slow_signer: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    caller = threading.current_thread()
    threads = []

    def sign(name: str, **_: object) -> tuple[str, datetime]:
        threads.append(threading.current_thread())
        return "u", datetime.now(UTC)

    monkeypatch.setattr(storage, "signed_url", sign)
    storage.signed_get_urls(["generated/one.jpg"])
    assert threads == [caller]
