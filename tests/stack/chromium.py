"""Debian's chromium for the browser tests, or a skip that names the command installing it."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from urllib.parse import urlsplit

import pytest

CHROMIUM = shutil.which("chromium")
MISSING = "chromium is not on PATH: apt-get install -y chromium (.ci/run does, as root)"
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=MISSING)


def allowed_ports(env: Mapping[str, str], *urls: str) -> str:
    """The flag that lets chromium reach every service of the stack (and `urls`): a port offset
    can put one on a port Chrome refuses (STACK_PORT_OFFSET=2000 puts the api on 10080, one of
    its unsafe ports), and every fetch() to it would fail before any CORS check."""
    every = [v for v in env.values() if v.startswith("http://")] + list(urls)
    ports = sorted({str(urlsplit(url).port) for url in every if urlsplit(url).port})
    return f"--explicitly-allowed-ports={','.join(ports)}"
