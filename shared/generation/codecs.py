"""Pillow codecs of the render worker: reference images in, JPEGs and thumbnails out.

Pure functions: no I/O, no environment, no settings; the same image gives the same bytes.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps


def load_reference(data: bytes, max_side: int = 1024) -> Image.Image:
    """Decodes an uploaded reference cheaply: upright, RGB (alpha over white), at most max_side."""
    with Image.open(io.BytesIO(data)) as opened:
        opened.draft("RGB", (max_side, max_side))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
        image = ImageOps.exif_transpose(opened)
    if image.mode.startswith("I"):  # 16-bit grayscale: keep the top 8 bits, not a clipped copy
        image = image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, (255, 255, 255))
        image.paste(rgba, mask=rgba.getchannel("A"))
    image = image.convert("RGB")
    image.thumbnail((max_side, max_side))  # bicubic, with a cheap reduce() first when large
    return image


def encode_jpeg(image: Image.Image, quality: int = 88) -> bytes:
    """Progressive, optimized JPEG without metadata: the same image gives the same bytes."""
    buffer = io.BytesIO()
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    rgb.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True, comment=b"")
    return buffer.getvalue()


def thumbnail_jpeg(image: Image.Image, max_side: int = 384) -> tuple[bytes, int, int]:
    """A JPEG no larger than max_side on either side (never enlarged), with its size.

    Shrunk first by the largest whole factor with a box filter (each pixel the mean of its box:
    fast, and what a downscale wants), then to size with Lanczos from at most twice the size.
    """
    factor = max(image.size) // max_side
    reduced = image.reduce(factor) if factor > 1 else image
    scale = min(1.0, max_side / max(reduced.size))
    size = (max(1, round(reduced.width * scale)), max(1, round(reduced.height * scale)))
    thumb = reduced.resize(size, Image.Resampling.LANCZOS) if scale < 1 else reduced
    return encode_jpeg(thumb), thumb.width, thumb.height
