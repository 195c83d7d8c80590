"""An upload's working copy: decoded once, at registration, upright and at most WORKING_SIDE
pixels a side. Renders and the image model read it, never the upload, so what a reference
costs a render no longer depends on how well the upload compresses.

The decode is bounded before it starts: imageinfo estimates its memory from the header (an
upload over UPLOAD_MAX_DECODE_BYTES is refused), a JPEG decodes at 1/2 to 1/8 scale (DCT
scaling), and one decode runs at a time per process. The decoded image is then shrunk by a
whole factor band by band, so no second full-size copy is ever made (Pillow's reduce() of an
image with alpha, or of a palette or 16-bit one, would convert the whole image first). Opaque
images become a JPEG (quality 90), images with transparency a PNG.
"""

from __future__ import annotations

import io
import threading
from typing import TYPE_CHECKING

from shared.uploads.imageinfo import WORKING_SIDE, working_size

if TYPE_CHECKING:
    from PIL import Image

JPEG = "image/jpeg"
PNG = "image/png"
_one_decode_at_a_time = threading.Lock()
_REDUCIBLE = {"1": "L", "P": "RGBA", "I;16": "I", "I;16B": "I"}  # modes reduce() refuses
_BAND_ROWS = 32  # rows of the reduced image made from one band


def make(data: bytes) -> tuple[bytes, str]:
    """The working copy of an accepted upload, and its content type."""
    from PIL import Image, ImageOps  # here: the api loads Pillow for uploads only

    with _one_decode_at_a_time:
        image = _decode_reduced(data)
        image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.LANCZOS)
    image = _eight_bit(ImageOps.exif_transpose(image))
    out = io.BytesIO()
    if image.mode == "RGBA":
        image.save(out, "PNG")
        return out.getvalue(), PNG
    image.save(out, "JPEG", quality=90, optimize=True)
    return out.getvalue(), JPEG


def _decode_reduced(data: bytes) -> Image.Image:
    """The image at no more than twice the working size a side, with its EXIF."""
    from PIL import Image

    opened = Image.open(io.BytesIO(data))
    opened.draft(None, working_size(*opened.size))  # JPEG: decoded at a reduced scale
    opened.load()
    factor = max(1, max(opened.size) // WORKING_SIDE)
    mode = _REDUCIBLE.get(opened.mode, opened.mode)
    if factor == 1 and mode == opened.mode:
        return opened
    width, height = opened.size
    reduced = Image.new(mode, (-(-width // factor), -(-height // factor)))
    for top in range(0, height, factor * _BAND_ROWS):
        band = opened.crop((0, top, width, min(height, top + factor * _BAND_ROWS)))
        band = band.convert(mode) if band.mode != mode else band
        reduced.paste(band.reduce(factor) if factor > 1 else band, (0, top // factor))
    reduced.info = dict(opened.info)
    opened.close()  # frees the full-size pixels now
    return reduced


def _eight_bit(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when some pixel is not opaque; 16-bit samples keep their top 8 bits."""
    if image.mode == "I":
        image = image.point(lambda v: v * (1 / 257)).convert("L")
    if image.mode in ("RGBA", "LA"):
        image = image.convert("RGBA")
        if image.getchannel("A").getextrema() != (255, 255):  # some pixel is not opaque
            return image
    return image.convert("RGB")
