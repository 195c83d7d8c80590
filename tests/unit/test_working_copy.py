"""working_copy.make(): what renders and the image model read instead of the upload."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image

from shared.uploads import working_copy
from tools.fixtures import images as make


def made(data: bytes) -> Image.Image:
    copy, content_type = working_copy.make(data)
    image = Image.open(io.BytesIO(copy))
    assert content_type == Image.MIME[image.format or ""]
    return image


@pytest.mark.parametrize(
    ("factory", "fmt", "size"),
    [
        (make.jpeg, "JPEG", (64, 48)),
        (make.png, "JPEG", (64, 48)),  # opaque: a JPEG, whatever the upload was
        (make.webp, "JPEG", (64, 48)),
        (make.jpeg_rotated, "JPEG", (48, 64)),  # upright
        (make.webp_rotated, "JPEG", (48, 64)),
        (make.png_rotated, "JPEG", (48, 64)),
        (make.jpeg_cmyk, "JPEG", (64, 48)),
        (make.png_palette_transparent, "PNG", (64, 48)),  # transparency kept: a PNG
    ],
)
def test_small_images_keep_their_size_upright(
    factory: Callable[[], bytes], fmt: str, size: tuple[int, int]
) -> None:
    image = made(factory())
    assert (image.format, image.size, image.mode) == (fmt, size, "RGBA" if fmt == "PNG" else "RGB")


def test_sixteen_bit_samples_keep_their_top_eight_bits() -> None:
    ramp = Image.linear_gradient("L").convert("I").point(lambda v: v * 257)  # 0 to 65535
    out = io.BytesIO()
    ramp.convert("I;16").save(out, "PNG")
    low, high = made(out.getvalue()).convert("L").getextrema()  # type: ignore[misc]
    assert low <= 2 and high >= 250  # scaled, not clipped to 255 from the first step


def test_a_large_image_is_reduced_band_by_band_to_2048_with_its_transparency() -> None:
    picture = Image.new("RGBA", (6000, 300), (200, 30, 30, 255))
    picture.paste((0, 0, 0, 0), (0, 0, 3000, 300))  # the left half is transparent
    out = io.BytesIO()
    picture.save(out, "PNG")

    image = made(out.getvalue())

    assert (image.format, image.size) == ("PNG", (2048, 102))
    assert image.getpixel((100, 50)) == (0, 0, 0, 0)
    assert image.getpixel((2000, 50)) == (200, 30, 30, 255)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale() -> None:
    image = made(make.jpeg(4800, 3200))
    assert (image.format, image.size) == ("JPEG", (2048, 1365))
