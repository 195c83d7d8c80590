"""The source archive: deterministic, complete, and nothing that should stay home."""

import hashlib
import zipfile
from pathlib import Path

from tools import package


def test_the_archive_is_byte_for_byte_reproducible(archive: Path, tmp_path: Path) -> None:
    again = package.build(tmp_path / "again.zip")
    assert (
        hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(archive.read_bytes()).digest()
    )


def test_the_archive_holds_the_code_the_pins_and_a_root_main(archive: Path, m) -> None:
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        infos = z.infolist()
        main = z.read("main.py").decode()
        requirements = z.read("requirements.txt")
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {package.FIXED_TIME}
    assert "shared/config.py" in names
    assert requirements == (package.manifest.ROOT / "requirements.txt").read_bytes()
    for f in m.functions:
        assert f.source in names
        assert f"from {f.module} import {f.entry_point}\n" in main
    allowed_tops = {"functions", "shared", "main.py", "requirements.txt"}
    assert {name.split("/")[0] for name in names} == allowed_tops
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n]


def test_caches_next_to_the_code_stay_out(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for rel in ("functions/x/main.py", "functions/x/__pycache__/main.cpython-311.pyc",
                "shared/a.py", "shared/queries.sql", "shared/tests/test_a.py",
                "tools/package.py", "tests/test_x.py"):  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    assert sorted(package.source_files(root)) == [
        "functions/x/main.py",
        "shared/a.py",
        "shared/queries.sql",
    ]
