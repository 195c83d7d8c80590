"""`make demo`'s main job, run for real on the local stack, and its outcome checked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.stack.conftest import Stack
from tools.fixtures.processes import ROOT
from tools.pgcluster import connect

pytestmark = pytest.mark.stack


def _query(database_url: str, sql: str, **params):
    conn = connect(database_url)
    try:
        return conn.run(sql, **params)
    finally:
        conn.close()


def test_demo_writes_a_contact_sheet_of_a_completed_four_shot_job(stack: Stack, tmp_path: Path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "tools.demo", "--out", str(out), "--timeout", "240"],
        cwd=ROOT, capture_output=True, text=True, timeout=420,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Pillow fallback" in result.stdout
    job_id = re.search(r"job ([0-9a-f-]{36}) accepted", result.stdout).group(1)
    # the stack was running before, so it still runs, and the demo says where its console is
    assert re.search(
        rf"Console: {re.escape(stack.env['CONSOLE_URL'])} \(sign in as demo-[0-9a-f]{{6}} ",
        result.stdout,
    )

    # THEN the contact sheet references images that exist and open
    page = (out / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 6  # two references and four shots
    for source in sources:
        with Image.open(out / source) as image:
            image.verify()

    # AND the database holds the completed job, its images, its session and its references
    url = stack.env["DATABASE_URL"]
    [[status, shots, method, session_id, user_id]] = _query(
        url,
        "SELECT status, number_of_shots, generation_method, session_id, user_id"
        " FROM generation_jobs WHERE id = CAST(:id AS uuid)",
        id=job_id,
    )
    assert (status, shots, method) == ("completed", 4, "fallback")
    [[images]] = _query(
        url,
        "SELECT count(*) FROM generated_images WHERE generation_job_id = CAST(:id AS uuid)",
        id=job_id,
    )
    assert images == 4
    [[count, thumbnail]] = _query(
        url, "SELECT generated_count, thumbnail_url FROM sessions WHERE id = :s", s=session_id
    )
    assert count == 4 and thumbnail
    [[references]] = _query(
        url, "SELECT count(*) FROM reference_images WHERE user_id = :u", u=user_id
    )
    assert references == 2
    [[linked]] = _query(
        url,
        "SELECT count(*) FROM generation_job_reference_images WHERE generation_job_id = CAST(:id AS uuid)",
        id=job_id,
    )
    assert linked == 1
