"""Debian's chromium for the browser tests, or a skip that names the command installing it."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium")
MISSING = "chromium is not on PATH: apt-get install -y chromium (.ci/run does, as root)"
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
