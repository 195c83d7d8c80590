"""Bytes of real test images, made with Pillow, and hand-made hostile ones Pillow won't write."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image, ImageCms


def _save(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _picture(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A smooth, photo-like picture: blurred noise, so that it compresses like a photo."""
    noise = Image.effect_noise((max(1, width // 8), max(1, height // 8)), 60)
    gray = noise.resize((width, height), Image.Resampling.BICUBIC)
    return Image.merge(
        "RGB", (gray, gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gray)
    ).convert(mode)


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Test Camera Co."
    return exif.tobytes()


def jpeg(width: int = 64, height: int = 48, **options: Any) -> bytes:
    return _save(_picture(width, height), "JPEG", **options)


def png(width: int = 64, height: int = 48, **options: Any) -> bytes:
    return _save(_picture(width, height), "PNG", **options)


def webp(width: int = 64, height: int = 48, **options: Any) -> bytes:
    return _save(_picture(width, height), "WEBP", **options)


def jpeg_rotated(orientation: int = 6, width: int = 64, height: int = 48) -> bytes:
    """A JPEG stored landscape whose EXIF says to display it rotated."""
    return jpeg(width, height, exif=_exif(orientation))


def webp_rotated(orientation: int = 6, width: int = 64, height: int = 48) -> bytes:
    return webp(width, height, exif=_exif(orientation))


def png_rotated(orientation: int = 6, width: int = 64, height: int = 48) -> bytes:
    return png(width, height, exif=_exif(orientation))


def jpeg_cmyk(width: int = 64, height: int = 48) -> bytes:
    return _save(_picture(width, height, "CMYK"), "JPEG")


def jpeg_icc(width: int = 64, height: int = 48) -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return jpeg(width, height, icc_profile=profile)


def jpeg_progressive(width: int = 64, height: int = 48) -> bytes:
    return jpeg(width, height, progressive=True)


def png_16bit(width: int = 64, height: int = 48) -> bytes:
    gray = Image.linear_gradient("L").resize((width, height)).convert("I")
    return _save(gray.point(lambda v: v * 257).convert("I;16"), "PNG")


def png_palette_transparent(width: int = 64, height: int = 48) -> bytes:
    image = _picture(width, height).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _save(image, "PNG", transparency=0)


def _frames(width: int, height: int) -> list[Image.Image]:
    return [Image.new("RGB", (width, height), color) for color in ("red", "green", "blue")]


def png_animated(width: int = 32, height: int = 32) -> bytes:
    first, *rest = _frames(width, height)
    return _save(first, "PNG", save_all=True, append_images=rest, duration=100)


def webp_animated(width: int = 32, height: int = 32) -> bytes:
    first, *rest = _frames(width, height)
    return _save(first, "WEBP", save_all=True, append_images=rest, duration=100)


def jpeg_24mp() -> bytes:
    """6000x4000, about the size and header of a camera photo (EXIF, several MB)."""
    return jpeg(6000, 4000, quality=92, exif=_exif(1))


def png_flat(width: int = 12_000, height: int = 4_166) -> bytes:
    """One colour at the pixel cap: about 200 KB that Pillow decodes into 200 MB."""
    return _save(Image.new("RGBA", (width, height), (40, 90, 160, 255)), "PNG")


def webp_flat(width: int, height: int) -> bytes:
    """One colour, lossless: a few bytes that libwebp and Pillow decode at 17 bytes a pixel."""
    return _save(Image.new("RGB", (width, height), (40, 90, 160)), "WEBP", lossless=True)


def text_renamed_jpg() -> bytes:
    return b"This is not a picture, whatever its name says.\n" * 4


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header declaring huge dimensions over a few hundred bytes of zlib data."""
    rows = zlib.compress(b"\x00" * (1 + width // 8) * 64, 9)  # 1-bit gray rows of zeros
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )


def jpeg_huge_sof(width: int = 65_000, height: int = 65_000) -> bytes:
    """A real small JPEG whose SOF0 is rewritten to declare `width` x `height`."""
    data = bytearray(jpeg(16, 16))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def gif(width: int = 16, height: int = 16) -> bytes:
    return _save(Image.new("P", (width, height)), "GIF")
