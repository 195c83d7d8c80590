"""Identify an uploaded image from as few bytes as possible, and refuse anything unsafe.

`inspect` fetches bytes through a `read_range(start, end_inclusive)` callable (a ranged GCS
download in production), so it reads the headers and a short tail, not the image data.
The format is sniffed from the content, never from the name. JPEG and PNG headers are parsed by
Pillow's plugins, constructed directly rather than through `Image.open` so that our own limits,
not Pillow's global bomb check (and its process-wide warning), decide what is too big. WebP is
parsed here from its RIFF chunks, because Pillow's WebP plugin reads the whole file and libwebp
allocates the canvas when it opens it. No pixels are decoded.

The header also tells what the one decode of the image (its working copy, working_copy.py)
will cost in memory, and an image over `max_decode_bytes` is refused before it is decoded:
Pillow holds a PNG whole (1 to 4 bytes a pixel, by mode), a WebP about four times over (libwebp's canvas and Pillow's copies), a progressive JPEG's
decoder every DCT coefficient (2 bytes a sample), and a baseline JPEG only what it decodes at
1/2 to 1/8 scale.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Literal, NamedTuple

from shared.config import UploadLimits
from shared.errors import Unprocessable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

Reason = Literal[
    "empty",
    "too_large",
    "unsupported_format",
    "truncated",
    "corrupt",
    "too_many_pixels",
    "animated",
]
ImageFormat = Literal["JPEG", "PNG", "WEBP"]
ReadRange = Callable[[int, int], bytes]

MIME_TYPES: dict[ImageFormat, str] = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
}
_BLOCK = 64 * 1024  # one ranged read; holds the headers of almost every JPEG and PNG
# Hardware encoders pad JPEGs with NULs after EOI (to 4 bytes, or thousands of bytes; every
# decoder stops at EOI), so the tail read allows that much padding.
_JPEG_TAIL = 16 * 1024
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_SWAPPED_ORIENTATIONS = {5, 6, 7, 8}  # rotated by 90 or 270 degrees
WORKING_SIDE = 2048  # the long side of a working copy (working_copy.py)
# Bytes a pixel of a decoded PNG, by Pillow mode (4 for the rest).
_PNG_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2}
_WEBP_BYTES = 17  # measured: 816 MiB to decode a 12000x4166 WebP with Pillow 13
_JPEG_SCALES = (8, 4, 2, 1)  # libjpeg's DCT scaling, as Image.draft picks it


class ImageRejected(Unprocessable):
    """The upload is not an image we accept; `reason` is a stable code, the message is for people."""

    code = "image_rejected"

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message, details={"reason": reason})
        self.reason: Reason = reason


@dataclass(frozen=True)
class ImageInfo:
    """What an accepted image is; width and height are as displayed (after EXIF orientation)."""

    format: ImageFormat
    mime_type: str
    width: int
    height: int
    bytes_read: int
    decode_bytes: int  # the memory its one decode needs (an estimate from the header)


class _Header(NamedTuple):
    width: int
    height: int
    animated: bool
    exif: bytes | None
    decode_bytes: int


class _RangeFile(io.RawIOBase):
    """A read-only, seekable file over `read_range` that counts the bytes it fetches."""

    def __init__(self, read_range: ReadRange, size: int) -> None:
        self._read_range = read_range
        self._size = size
        self._pos = 0
        self.bytes_read = 0
        self.failure: BaseException | None = None  # a fetch error, kept in case Pillow wraps it

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        with memoryview(buffer) as view:
            data = self.fetch(self._pos, min(self._pos + view.nbytes, self._size))
            view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def fetch(self, start: int, stop: int) -> bytes:
        """Bytes [start, stop) of the object, fetched and counted."""
        if start >= stop:
            return b""
        try:
            data = self._read_range(start, stop - 1)
            if len(data) != stop - start:
                raise ImageRejected("truncated", "the file is shorter than its stated size")
        except BaseException as exc:
            self.failure = exc
            raise
        self.bytes_read += len(data)
        return data


def inspect(read_range: ReadRange, size: int, limits: UploadLimits) -> ImageInfo:
    """Identify the image of `size` bytes behind `read_range`, or raise ImageRejected."""
    if size <= 0:
        raise ImageRejected("empty", "the file is empty")
    if size > limits.max_bytes:
        raise ImageRejected("too_large", f"the file is larger than {limits.max_bytes} bytes")
    raw = _RangeFile(read_range, size)
    with io.BufferedReader(raw, buffer_size=_BLOCK) as stream:
        head = stream.peek(_BLOCK)  # the whole first block, which is all of a small file
        fmt = _sniff(head)
        if fmt is None or fmt not in limits.formats:
            allowed = ", ".join(limits.formats)
            raise ImageRejected("unsupported_format", f"the file is not an image of {allowed}")
        _check_end(fmt, raw, head, size)
        try:
            header = _parse(fmt, stream, size)
        except ImageRejected:
            raise
        except Exception as exc:  # untrusted input: whatever the parser trips on is corruption
            raise raw.failure or ImageRejected("corrupt", "the image is damaged") from exc
    width, height = header.width, header.height
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"the image is {width}x{height}; the limit is {limits.max_side} pixels a side "
            f"and {limits.max_pixels} pixels in all",
        )
    if header.animated:
        raise ImageRejected("animated", "animated images are not accepted as references")
    if header.decode_bytes > limits.max_decode_bytes:
        mib = 1024 * 1024
        raise ImageRejected(
            "too_many_pixels",
            f"a {fmt} image of {width}x{height} needs about {header.decode_bytes // mib} MiB to "
            f"decode; the limit is {limits.max_decode_bytes // mib} MiB",
        )
    if _orientation(header.exif) in _SWAPPED_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(fmt, MIME_TYPES[fmt], width, height, raw.bytes_read, header.decode_bytes)


def _sniff(head: bytes) -> ImageFormat | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _check_end(fmt: ImageFormat, raw: _RangeFile, head: bytes, size: int) -> None:
    """Refuse a file cut short: JPEG ends with EOI, PNG with IEND, WebP's RIFF size fits."""

    def tail(length: int) -> bytes:
        return head[-length:] if len(head) == size else raw.fetch(size - length, size)

    if fmt == "JPEG":
        complete = tail(min(size, _JPEG_TAIL)).rstrip(b"\x00").endswith(b"\xff\xd9")
    elif fmt == "PNG":
        complete = tail(min(size, len(_PNG_IEND))) == _PNG_IEND
    else:
        riff_end = 8 + int.from_bytes(head[4:8], "little")
        if riff_end < size:
            raise ImageRejected("corrupt", "the file has data after the end of the image")
        complete = riff_end == size
    if not complete:
        raise ImageRejected("truncated", "the file ends before the image does")


def _parse(fmt: ImageFormat, stream: BinaryIO, size: int) -> _Header:
    if fmt == "WEBP":
        return _parse_webp(stream, size)
    from PIL import JpegImagePlugin, PngImagePlugin  # here: the api loads Pillow for uploads only

    plugin = JpegImagePlugin.JpegImageFile if fmt == "JPEG" else PngImagePlugin.PngImageFile
    image = plugin(stream)
    if not image.tile:  # no scan (JPEG SOS) or no image data (PNG IDAT) before the end
        raise ImageRejected("corrupt", "the file has no image data")
    width, height = image.size
    if fmt == "PNG":
        cost = _PNG_BYTES.get(image.mode, 4) * width * height
    elif image.info.get("progressive"):
        cost = 2 * len(image.getbands()) * width * height
    else:
        cost = 4 * _jpeg_decoded_pixels(width, height)
    animated = bool(getattr(image, "is_animated", False))
    return _Header(width, height, animated, image.info.get("exif"), cost)


def working_size(width: int, height: int) -> tuple[int, int]:
    """The size of a working copy: WORKING_SIDE on the long side at most, never enlarged."""
    shrink = min(1.0, WORKING_SIDE / max(width, height))
    return max(1, round(width * shrink)), max(1, round(height * shrink))


def _jpeg_decoded_pixels(width: int, height: int) -> int:
    """Pixels of a baseline JPEG decoded at the DCT scale that Image.draft picks for its
    working copy (the largest that keeps both sides at least the working size)."""
    wanted = working_size(width, height)
    ratio = min(width // wanted[0], height // wanted[1])
    scale = next(s for s in _JPEG_SCALES if ratio >= s)
    return -(-width // scale) * -(-height // scale)


def _parse_webp(stream: BinaryIO, end: int) -> _Header:
    """Walk the RIFF chunks (RFC 9649); only chunk headers, frame headers and EXIF are read."""
    chunks: dict[bytes, tuple[int, int]] = {}  # first payload offset and size of each type
    offset = 12
    while offset < end:
        fourcc, length = struct.unpack("<4sI", _read_at(stream, offset, 8))
        chunks.setdefault(fourcc, (offset + 8, length))
        offset += 8 + length + (length & 1)
        if offset > end:
            raise ImageRejected("corrupt", "a WebP chunk runs past the end of the file")
    first = _read_at(stream, 12, 4)
    if first != b"VP8X":
        if first not in (b"VP8 ", b"VP8L"):
            raise ImageRejected("corrupt", "the WebP file does not start with an image")
        width, height = _frame_size(stream, chunks)
        return _Header(width, height, False, None, _WEBP_BYTES * width * height)
    vp8x = _chunk(stream, chunks, b"VP8X", 10)
    width = int.from_bytes(vp8x[4:7], "little") + 1
    height = int.from_bytes(vp8x[7:10], "little") + 1
    cost = _WEBP_BYTES * width * height
    if vp8x[0] & 0x02 or b"ANIM" in chunks or b"ANMF" in chunks:
        return _Header(width, height, True, None, cost)
    if _frame_size(stream, chunks) != (width, height):
        raise ImageRejected("corrupt", "the WebP frame does not match its canvas")
    exif = _chunk(stream, chunks, b"EXIF") if b"EXIF" in chunks else None
    return _Header(width, height, False, exif, cost)


def _frame_size(stream: BinaryIO, chunks: dict[bytes, tuple[int, int]]) -> tuple[int, int]:
    """The size that a still image's VP8 (lossy) or VP8L (lossless) bitstream declares."""
    if b"VP8 " in chunks:
        frame = _chunk(stream, chunks, b"VP8 ", 10)
        width, height = (int.from_bytes(frame[i : i + 2], "little") & 0x3FFF for i in (6, 8))
        if frame[0] & 1 == 0 and frame[3:6] == b"\x9d\x01\x2a" and width and height:
            return width, height  # a key frame with its start code
    elif b"VP8L" in chunks:
        frame = _chunk(stream, chunks, b"VP8L", 5)
        bits = int.from_bytes(frame[1:5], "little")
        if frame[0] == 0x2F and bits >> 29 == 0:  # signature, version 0
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise ImageRejected("corrupt", "the WebP bitstream header is damaged")


def _chunk(
    stream: BinaryIO, chunks: dict[bytes, tuple[int, int]], fourcc: bytes, need: int = 0
) -> bytes:
    """The payload of a chunk (only its first `need` bytes when given)."""
    offset, length = chunks[fourcc]
    if length < need:
        raise ImageRejected("corrupt", f"the WebP {fourcc.decode()} chunk is too short")
    return _read_at(stream, offset, need or length)


def _read_at(stream: BinaryIO, offset: int, length: int) -> bytes:
    stream.seek(offset)
    data = stream.read(length)
    if len(data) != length:
        raise ImageRejected("corrupt", "a WebP chunk runs past the end of the file")
    return data


def _orientation(exif: bytes | None) -> int:
    """EXIF orientation (1 to 8); an unreadable EXIF block counts as upright, as in Pillow."""
    if not exif:
        return 1
    from PIL import ExifTags, Image

    tags = Image.Exif()
    try:
        tags.load(exif)
    except (SyntaxError, struct.error):
        return 1
    value = tags.get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) else 1
