"""register_upload's service and reconcile on real PostgreSQL and a real GCS emulator."""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from shared import config, db, maintenance, storage
from shared.events import StorageObject
from shared.limits import service as limits
from shared.queries import reference_images
from shared.uploads import reconcile, registration
from tests.integration import factories
from tests.integration.uploads import exists, logged, put, row_for, upload_name
from tests.unit.test_uploads import FakePager
from tools.fixtures import images as make


@functools.cache
def jpeg_24mp() -> bytes:
    return make.jpeg_24mp()


@pytest.mark.parametrize(
    ("factory", "mime", "size"),
    [
        (make.jpeg, "image/jpeg", (64, 48)),
        (make.png, "image/png", (64, 48)),
        (make.webp, "image/webp", (64, 48)),
        (make.jpeg_rotated, "image/jpeg", (48, 64)),
        (make.webp_rotated, "image/webp", (48, 64)),
        (make.jpeg_cmyk, "image/jpeg", (64, 48)),
        (make.jpeg_icc, "image/jpeg", (64, 48)),
        (make.jpeg_progressive, "image/jpeg", (64, 48)),
        (make.png_16bit, "image/png", (64, 48)),
        (make.png_palette_transparent, "image/png", (64, 48)),
        (jpeg_24mp, "image/jpeg", (6000, 4000)),
    ],
)
def test_registers_supported_images(
    bucket: str, owner: dict[str, Any], factory: Callable[[], bytes], mime: str, size: Any
) -> None:
    data = factory()
    obj = put(upload_name(owner, "Holiday Pic.bin"), data)
    assert registration.register_object(obj) == "registered"
    row = row_for(obj)
    assert row is not None
    assert (row["mime_type"], (row["width"], row["height"])) == (mime, size)
    assert (row["file_name"], row["file_size"], row["user_id"]) == (
        "Holiday_Pic.bin",
        len(data),
        owner["id"],
    )
    assert row["gcp_bucket_path"] == f"{bucket}/{obj.name}"
    assert row["gcp_url"] == storage.canonical_url(obj.name)
    assert row["session_id"] is None
    copy = working_copy(row)
    assert copy.format == ("PNG" if factory is make.png_palette_transparent else "JPEG")
    assert fits(copy.size, size)  # upright, 2048 on the long side at most


def fits(copy: tuple[int, int], original: tuple[int, int]) -> bool:
    """The copy is the original scaled to at most 2048 a side, to the pixel (rounding)."""
    shrink = min(1.0, 2048 / max(original))
    return all(abs(c - o * shrink) <= 2 for c, o in zip(copy, original, strict=True))


def working_copy(row: dict[str, Any]) -> Image.Image:
    name = storage.object_name_from_bucket_path(row["working_copy_path"])
    assert name == f"working/{storage.object_name_from_bucket_path(row['gcp_bucket_path'])}" + (
        ".png" if name.endswith(".png") else ".jpg"
    )
    return Image.open(io.BytesIO(storage.read(name)))


def test_an_upload_without_a_ticket_is_quarantined_unread(
    bucket: str, owner: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    obj = put(upload_name(owner), make.jpeg(), ticket=False)
    monkeypatch.setattr(storage, "read_range", lambda *a, **k: pytest.fail("read"))
    assert registration.register_object(obj) == "quarantined"
    assert row_for(obj) is None and exists(storage.QUARANTINE_PREFIX + obj.name)
    assert logged(capsys, "register_upload.quarantined")[0]["reason"] == "no_ticket"


def test_an_upload_larger_than_its_ticket_is_quarantined(
    bucket: str, owner: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    name = upload_name(owner)
    with db.transaction() as conn:
        limits.admit_upload(conn, owner["id"], storage.bucket_path(name), 100)
    obj = put(name, make.jpeg(), ticket=False)
    assert registration.register_object(obj) == "quarantined"
    assert logged(capsys, "register_upload.quarantined")[0]["reason"] == "exceeds_ticket"


def test_a_highly_compressible_png_at_the_pixel_cap_gets_a_small_working_copy(
    bucket: str, owner: dict[str, Any]
) -> None:
    data = make.png_flat()  # 50 MP in about 200 KB
    obj = put(upload_name(owner, "flat.png"), data)
    assert registration.register_object(obj) == "registered"
    row = row_for(obj)
    assert row is not None and (row["width"], row["height"]) == (12000, 4166)
    copy = working_copy(row)
    assert copy.format == "JPEG" and fits(copy.size, (12000, 4166))  # opaque: a JPEG


def test_pixels_that_do_not_decode_are_quarantined_as_corrupt(
    bucket: str, owner: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(make.png(256, 256))
    start = data.index(b"IDAT") + 4
    data[start : start + 64] = bytes(64)  # the zlib stream of the pixels is broken
    obj = put(upload_name(owner, "broken.png"), bytes(data))
    assert registration.register_object(obj) == "quarantined"
    assert logged(capsys, "register_upload.quarantined")[0]["reason"] == "corrupt"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (make.text_renamed_jpg(), "unsupported_format"),
        (make.gif(), "unsupported_format"),
        (make.truncated(make.jpeg()), "truncated"),
        (b"", "empty"),
        (make.png_bomb(), "too_many_pixels"),
        (make.jpeg_huge_sof(), "too_many_pixels"),
        (make.png_animated(), "animated"),
        (make.webp_animated(), "animated"),
    ],
)
def test_quarantines_what_is_not_an_acceptable_image(
    bucket: str, owner: dict[str, Any], capsys: pytest.CaptureFixture[str], data: bytes, reason: str
) -> None:
    obj = put(upload_name(owner, "evil.jpg"), data, **{"session-id": "kept"})
    assert registration.register_object(obj) == "quarantined"
    assert row_for(obj) is None
    assert not exists(obj.name)
    assert storage.read(storage.QUARANTINE_PREFIX + obj.name) == data
    [line] = logged(capsys, "register_upload.quarantined")
    assert line["reason"] == reason and line["severity"] == "WARNING"
    # A redelivery of the same event finds the generation gone and acknowledges quietly.
    assert registration.register_object(obj) == "gone"


def test_bytes_over_the_limit_are_quarantined_without_reading(
    bucket: str, owner: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPLOAD_MAX_BYTES", "1000")
    config.settings.cache_clear()
    obj = put(upload_name(owner), make.jpeg(200, 200))
    monkeypatch.setattr(storage, "read_range", lambda *a, **k: pytest.fail("read"))
    assert registration.register_object(obj) == "quarantined"
    assert row_for(obj) is None


def test_unknown_user_is_quarantined(bucket: str, capsys: pytest.CaptureFixture[str]) -> None:
    obj = put(upload_name({"id": uuid.uuid4()}), make.jpeg(), ticket=False)
    assert registration.register_object(obj) == "quarantined"
    assert not exists(obj.name) and exists(storage.QUARANTINE_PREFIX + obj.name)
    assert logged(capsys, "register_upload.quarantined")[0]["reason"] == "unknown_user"


@pytest.mark.parametrize("name", ["uploads/not-a-user/x.jpg", "uploads/x.jpg"])
def test_names_outside_the_layout_are_quarantined(bucket: str, name: str) -> None:
    obj = put(name, make.jpeg(), ticket=False)
    assert registration.register_object(obj) == "quarantined"
    assert exists(storage.QUARANTINE_PREFIX + name)


@pytest.mark.parametrize(
    "name", ["generated/job/1_x.jpg", "quarantine/uploads/u/x.jpg", "uploadsx/a.jpg", "uploads/"]
)
def test_objects_outside_uploads_are_ignored_without_reading(
    bucket: str, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    obj = put(name, make.text_renamed_jpg(), ticket=False)
    monkeypatch.setattr(storage, "read_range", lambda *a, **k: pytest.fail("read"))
    assert registration.register_object(obj) == "ignored"
    assert exists(name)


def test_another_buckets_event_is_ignored(bucket: str, owner: dict[str, Any]) -> None:
    obj = put(upload_name(owner), make.jpeg())
    other = StorageObject("another-bucket", obj.name, obj.generation, obj.size, None)
    assert registration.register_object(other) == "ignored"
    assert row_for(obj) is None


def test_own_session_is_linked_and_a_foreign_one_is_not(
    bucket: str, owner: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with db.transaction() as conn:
        mine = factories.session(conn, owner)
        theirs = factories.session(conn, factories.user(conn))
    linked = put(upload_name(owner, "a.jpg"), make.jpeg(), **{"session-id": str(mine["id"])})
    foreign = put(upload_name(owner, "b.jpg"), make.jpeg(), **{"session-id": str(theirs["id"])})
    junk = put(upload_name(owner, "c.jpg"), make.jpeg(), **{"session-id": "'; DROP TABLE x"})
    for obj in (linked, foreign, junk):
        assert registration.register_object(obj) == "registered"
    assert row_for(linked)["session_id"] == mine["id"]  # type: ignore[index]
    assert row_for(foreign)["session_id"] is None  # type: ignore[index]
    assert row_for(junk)["session_id"] is None  # type: ignore[index]
    warned = logged(capsys, "register_upload.foreign_session")
    assert {w["session_id"] for w in warned} == {str(theirs["id"]), "'; DROP TABLE x"}


def test_duplicate_and_concurrent_deliveries_leave_one_row(
    bucket: str, owner: dict[str, Any]
) -> None:
    obj = put(upload_name(owner), make.jpeg())
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: registration.register_object(obj), range(8)))
    assert outcomes.count("registered") == 1
    assert set(outcomes) == {"registered", "duplicate"}
    with db.transaction() as conn:
        assert db.one(conn, "SELECT count(*) AS n FROM reference_images")["n"] == 1  # type: ignore[index]


def test_a_deleted_reference_is_not_registered_again_by_a_late_event_or_reconcile(
    bucket: str, owner: dict[str, Any]
) -> None:
    # GIVEN a registered upload whose owner deleted it before the object itself was purged
    obj = put(upload_name(owner), make.jpeg())
    assert registration.register_object(obj) == "registered"
    with db.transaction() as conn:
        row = reference_images.get_by_path(conn, f"{obj.bucket}/{obj.name}")
        assert reference_images.delete_owned(conn, image_id=row["id"], user_id=owner["id"])
    # WHEN the finalize event comes (again) late, and reconcile walks the bucket
    assert registration.register_object(obj) == "gone"
    with db.transaction() as conn:
        assert reference_images.unregistered(conn, [f"{obj.bucket}/{obj.name}"]) == set()
        # THEN nothing was registered again
        assert db.one(conn, "SELECT count(*) AS n FROM reference_images")["n"] == 0  # type: ignore[index]


def test_register_returns_the_row_of_an_insert_that_commits_while_it_waits(
    bucket: str, owner: dict[str, Any]
) -> None:
    # GIVEN a registration inserted but not yet committed
    fields = {
        "user_id": owner["id"],
        "gcp_bucket_path": f"{bucket}/{upload_name(owner)}",
        "gcp_url": "https://storage.googleapis.com/x",
        "file_name": "photo.jpg",
        "file_size": 10,
        "mime_type": "image/jpeg",
        "width": 1,
        "height": 1,
    }

    def register() -> dict[str, Any] | None:
        with db.transaction() as conn:
            return reference_images.register(conn, **fields)

    with ThreadPoolExecutor(max_workers=1) as pool:
        with db.transaction() as first:
            inserted = reference_images.register(first, **fields)
            # WHEN a concurrent registration of the same path waits on it
            waiting = pool.submit(register)
            time.sleep(0.5)
            assert not waiting.done()
        # THEN once it commits, the waiting one returns that row (its snapshot predates it)
        row = waiting.result(timeout=10)
    assert inserted is not None and row is not None
    assert (row["id"], row["created"], inserted["created"]) == (inserted["id"], False, True)


def test_identifies_a_24_megapixel_photo_from_little_then_reads_it_once(
    bucket: str, owner: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    obj = put(upload_name(owner), jpeg_24mp())
    served: list[int] = []
    whole: list[int] = []
    ranged, read = storage.read_range, storage.read

    def counting(name: str, start: int, end: int, generation: int | None = None) -> bytes:
        assert generation == obj.generation  # every read is pinned to the event's generation
        data = ranged(name, start, end, generation)
        served.append(len(data))
        return data

    def reading(name: str, generation: int | None = None) -> bytes:
        assert generation == obj.generation
        data = read(name, generation)
        whole.append(len(data))
        return data

    monkeypatch.setattr(storage, "read_range", counting)
    monkeypatch.setattr(storage, "read", reading)
    assert registration.register_object(obj) == "registered"
    assert sum(served) <= 256 * 1024 < obj.size  # enough to accept or refuse it
    assert whole == [obj.size]  # then once, for its working copy


def test_reconcile_pages_through_batches_and_registers_what_is_missing(
    bucket: str, owner: dict[str, Any]
) -> None:
    # GIVEN seven uploads, two already registered, one hostile, and one object elsewhere
    objects = [put(upload_name(owner, f"{i}.png"), make.png()) for i in range(6)]
    hostile = put(upload_name(owner, "bad.jpg"), make.text_renamed_jpg())
    put("generated/j/1_x.jpg", make.jpeg(), ticket=False)
    for obj in objects[:2]:
        registration.register_object(obj)
    listing = list(storage.client().list_blobs(bucket, prefix=storage.UPLOADS_PREFIX))
    assert len(listing) == 7
    pager = FakePager(listing, page_size=3)  # type: ignore[arg-type]
    seen: list[dict[str, int]] = []
    # WHEN reconcile pages through it three pages, in batches of two
    counts = reconcile.reconcile(pager, batch_size=2, progress=seen.append)
    # THEN every page is read once and every missing object goes through the trigger's path
    assert pager.asked == [None, "1", "2"]
    assert counts == {"checked": 7, "missing": 5, "registered": 4, "quarantined": 1}
    assert [s["checked"] for s in seen] == [2, 4, 6, 7]
    assert all(row_for(obj) is not None for obj in objects)
    assert exists(storage.QUARANTINE_PREFIX + hostile.name)
    assert reconcile.reconcile() == {"checked": 6, "missing": 0}


def test_maintenance_task_reconciles_the_real_listing(bucket: str, owner: dict[str, Any]) -> None:
    obj = put(upload_name(owner), make.webp())
    summary = maintenance.run({"task": "reconcile_uploads"})
    assert summary == {"checked": 1, "missing": 1, "registered": 1}
    row = row_for(obj)
    assert row is not None and row["uploaded_at"] is not None


def test_reconcile_cli_prints_progress(bucket: str, owner: dict[str, Any]) -> None:
    put(upload_name(owner), make.jpeg())
    env = {**os.environ, "LOG_LEVEL": "ERROR"}
    done = subprocess.run(
        [sys.executable, "-m", "tools.reconcile_uploads", "--batch-size", "10"],
        env=env,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "checked 1, missing 1: registered 1" in done.stdout
    assert "done: checked 1, missing 1, registered 1" in done.stdout
