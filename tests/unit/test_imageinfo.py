"""inspect(): what it accepts, what it refuses and why, and how little it reads."""

from __future__ import annotations

import functools
import tracemalloc
from collections.abc import Callable

import pytest

from shared.config import UploadLimits
from shared.errors import Unprocessable
from shared.uploads.imageinfo import ImageInfo, ImageRejected, inspect
from tools.fixtures import images as make

LIMITS = UploadLimits()


class Blob:
    """An in-memory object behind a ranged reader that counts every byte it hands out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.served = 0
        self.calls = 0

    def read_range(self, start: int, end_inclusive: int) -> bytes:
        assert 0 <= start <= end_inclusive < len(self.data), (start, end_inclusive)
        self.calls += 1
        chunk = self.data[start : end_inclusive + 1]
        self.served += len(chunk)
        return chunk


def run(data: bytes, limits: UploadLimits = LIMITS) -> ImageInfo:
    blob = Blob(data)
    info = inspect(blob.read_range, len(data), limits)
    assert info.bytes_read == blob.served
    return info


def reason(data: bytes, limits: UploadLimits = LIMITS) -> str:
    with pytest.raises(ImageRejected) as caught:
        run(data, limits)
    return caught.value.reason


@functools.cache
def jpeg_24mp() -> bytes:
    return make.jpeg_24mp()


@pytest.mark.parametrize(
    ("factory", "fmt", "mime", "size"),
    [
        (make.jpeg, "JPEG", "image/jpeg", (64, 48)),
        (make.png, "PNG", "image/png", (64, 48)),
        (make.webp, "WEBP", "image/webp", (64, 48)),
        (functools.partial(make.webp, lossless=True), "WEBP", "image/webp", (64, 48)),
        (make.jpeg_rotated, "JPEG", "image/jpeg", (48, 64)),
        (functools.partial(make.jpeg_rotated, 8), "JPEG", "image/jpeg", (48, 64)),
        (functools.partial(make.jpeg_rotated, 3), "JPEG", "image/jpeg", (64, 48)),
        (make.webp_rotated, "WEBP", "image/webp", (48, 64)),
        (make.png_rotated, "PNG", "image/png", (48, 64)),
        (make.jpeg_cmyk, "JPEG", "image/jpeg", (64, 48)),
        (make.jpeg_icc, "JPEG", "image/jpeg", (64, 48)),
        (make.jpeg_progressive, "JPEG", "image/jpeg", (64, 48)),
        (make.png_16bit, "PNG", "image/png", (64, 48)),
        (make.png_palette_transparent, "PNG", "image/png", (64, 48)),
    ],
)
def test_accepts_supported_images(
    factory: Callable[[], bytes], fmt: str, mime: str, size: tuple[int, int]
) -> None:
    info = run(factory())
    assert (info.format, info.mime_type, (info.width, info.height)) == (fmt, mime, size)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (make.text_renamed_jpg(), "unsupported_format"),
        (make.gif(), "unsupported_format"),
        (b"\xff\xd8", "unsupported_format"),
        (make.truncated(make.jpeg()), "truncated"),
        (make.truncated(make.png()), "truncated"),
        (make.truncated(make.webp()), "truncated"),
        (make.truncated(make.jpeg(), keep=0.01), "truncated"),
        (make.webp() + b"\x00\x00", "corrupt"),
        (make.png_animated(), "animated"),
        (make.webp_animated(), "animated"),
        (make.png_bomb(), "too_many_pixels"),
        (make.png_bomb(10_000, 10_000), "too_many_pixels"),
        (make.jpeg_huge_sof(), "too_many_pixels"),
    ],
)
def test_refuses(data: bytes, expected: str) -> None:
    assert reason(data) == expected


def patched(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


JPEG, PNG, WEBP, WEBP_VP8X = make.jpeg(), make.png(), make.webp(), make.webp_rotated()
SOS = JPEG.index(b"\xff\xda")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(patched(PNG, 20, b"\xff"), id="png-ihdr-crc-mismatch"),
        pytest.param(PNG[:33] + PNG[-12:], id="png-without-idat"),
        pytest.param(JPEG[:2] + JPEG[SOS:], id="jpeg-without-frame-header"),
        pytest.param(JPEG[:SOS] + b"\xff\xd9", id="jpeg-without-scan"),
        pytest.param(patched(WEBP, 23, b"\x00\x00\x00"), id="webp-vp8-start-code"),
        pytest.param(patched(WEBP_VP8X, 24, b"\x01"), id="webp-canvas-not-frame-size"),
        pytest.param(patched(WEBP_VP8X, 16, b"\x0c"), id="webp-chunk-length-misaligned"),
    ],
)
def test_damaged_headers_are_corrupt(data: bytes) -> None:
    assert reason(data) == "corrupt"


def test_jpeg_padded_with_nuls_after_eoi_is_accepted_but_zero_filled_cut_is_not() -> None:
    jpeg = make.jpeg()
    assert run(jpeg + b"\x00" * 4000).width == 64
    assert reason(make.truncated(jpeg) + b"\x00" * (len(jpeg) // 2)) == "truncated"


def test_rejection_is_the_apis_422_error() -> None:
    with pytest.raises(ImageRejected) as caught:
        run(make.gif())
    error = caught.value
    assert isinstance(error, Unprocessable)
    assert error.http_status == 422
    assert error.to_body() == {
        "error": {
            "code": "image_rejected",
            "message": error.message,
            "details": {"reason": "unsupported_format"},
        }
    }


def test_limits_are_honoured() -> None:
    jpeg = make.jpeg(200, 100)
    assert reason(jpeg, UploadLimits(max_bytes=len(jpeg) - 1)) == "too_large"
    assert run(jpeg, UploadLimits(max_bytes=len(jpeg))).width == 200
    assert reason(jpeg, UploadLimits(max_pixels=19_999)) == "too_many_pixels"
    assert run(jpeg, UploadLimits(max_pixels=20_000)).height == 100
    assert reason(jpeg, UploadLimits(max_side=199)) == "too_many_pixels"
    assert run(jpeg, UploadLimits(max_side=200)).width == 200
    assert reason(jpeg, UploadLimits(formats=("PNG", "WEBP"))) == "unsupported_format"


def test_refuses_oversize_and_empty_without_reading() -> None:
    blob = Blob(make.jpeg())
    with pytest.raises(ImageRejected, match="larger"):
        inspect(blob.read_range, 10**9, LIMITS)
    with pytest.raises(ImageRejected, match="empty"):
        inspect(blob.read_range, 0, LIMITS)
    assert blob.calls == 0


def test_an_object_shorter_than_its_stated_size_is_truncated() -> None:
    jpeg = make.jpeg()
    with pytest.raises(ImageRejected) as caught:
        inspect(lambda start, end: jpeg[start : end + 1], len(jpeg) + 100, LIMITS)
    assert caught.value.reason == "truncated"


class StorageDown(Exception):
    pass


class StorageEOF(EOFError):
    """An error type that Pillow's open turns into SyntaxError; it must still come out as is."""


@pytest.mark.parametrize("error", [StorageDown, StorageEOF])
def test_storage_errors_propagate_unchanged(error: type[Exception]) -> None:
    # GIVEN a JPEG whose header (a 150 kB ICC profile) is longer than the first block read
    data = make.jpeg(icc_profile=bytes(150_000))
    blob = Blob(data)

    def failing_after_two_reads(start: int, end: int) -> bytes:
        if blob.calls == 2:  # the head and the tail were read; Pillow now asks for more
            raise error("storage unavailable")
        return blob.read_range(start, end)

    # WHEN the read made while Pillow parses fails, THEN that very error comes out
    with pytest.raises(error):
        inspect(failing_after_two_reads, len(data), LIMITS)
    assert run(data).width == 64


def test_24_megapixel_jpeg_reads_little() -> None:
    data = jpeg_24mp()
    blob = Blob(data)
    info = inspect(blob.read_range, len(data), LIMITS)
    assert (info.width, info.height) == (6000, 4000)
    assert len(data) > 2 * 1024 * 1024
    assert info.bytes_read == blob.served <= 256 * 1024
    assert blob.calls <= 3


def test_24_megapixel_jpeg_peak_memory_is_small() -> None:
    data = jpeg_24mp()
    blob = Blob(data)
    tracemalloc.start()
    try:
        inspect(blob.read_range, len(data), LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


@pytest.mark.parametrize(
    ("factory", "per_pixel"),
    [
        (make.png, 4),  # Pillow holds an RGB PNG whole, 4 bytes a pixel
        (make.png_16bit, 2),
        (make.webp, 17),  # libwebp's canvas and Pillow's copies
        (make.jpeg_progressive, 6),  # a DCT coefficient of 2 bytes for each of 3 samples
        (make.jpeg, 4),  # baseline, small: decoded at full scale
    ],
)
def test_the_decode_cost_is_known_from_the_header(
    factory: Callable[[], bytes], per_pixel: int
) -> None:
    data = factory()
    assert run(data).decode_bytes == per_pixel * 64 * 48
    limits = UploadLimits(max_decode_bytes=per_pixel * 64 * 48 - 1)
    assert reason(data, limits) == "too_many_pixels"


def test_a_large_baseline_jpeg_costs_what_its_reduced_decode_does() -> None:
    info = run(jpeg_24mp())
    assert info.decode_bytes == 4 * 3000 * 2000  # decoded at 1/2 scale for a 2048 px copy


def test_the_default_decode_budget_takes_a_png_at_the_pixel_cap_but_not_a_webp() -> None:
    png = make.png_flat()  # 50 MP
    assert run(png).decode_bytes == 4 * 12_000 * 4_166 <= LIMITS.max_decode_bytes
    assert run(make.webp_flat(4000, 4000)).decode_bytes == 17 * 16_000_000
    assert reason(make.webp_flat(6000, 4000)) == "too_many_pixels"  # 24 MP: 389 MiB to decode
