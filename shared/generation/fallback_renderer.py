"""The fallback renderer: a clearly synthetic placeholder for one shot, drawn with Pillow.

Pure functions: no I/O, no environment, no settings. The picture is deterministic in its spec,
so a retry writes the same bytes again. `image_size` is also the size asked of the model.
"""

from __future__ import annotations

import functools
import hashlib
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from shared.generation.parameters import JobParameters

RGB = tuple[int, ...]
Box = tuple[float, ...]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
T = TypeVar("T")

# gpt-image-2-class models take any size whose sides are divisible by 16: exact ratios, long
# side 1536 (square: 1024, the models' native size).
_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1536, 864),
    "9:16": (864, 1536),
    "4:3": (1536, 1152),
    "3:4": (1152, 1536),
    "3:2": (1536, 1024),
    "2:3": (1024, 1536),
}
_SCALE = 4  # the backdrop is drawn at 1/4 size, blurred and scaled up: soft, and cheap

# Keyword tables: the first entry whose keyword occurs in the value wins.
_STYLES = (  # sky top, horizon, ground near the horizon, ground at the bottom
    ("noir|black and white|monochrome", "1c1c20 b4b4b8 5a5a5e 141416"),
    ("cyberpunk|neon|sci-fi|futur", "160842 ec48a8 341468 0a0824"),
    ("anime|cartoon|illustrat|pixar|3d", "68b2f0 ffdee8 88cc8c 408e60"),
    ("watercolor|paint|oil|impression", "96bec8 f6e4c8 c4b28a 789074"),
    ("vintage|retro|sepia|film", "604028 ead4ac a8825c 4a3422"),
    ("cinematic|dramatic|epic", "0e3246 ec9254 3a484a 121a20"),
    ("fantasy|dream|surreal|magic", "3a1e6c f8aecc 5c3e8c 1e143c"),
)
_NATURAL = "5488ce e2ecf4 70945c 365634"
_LIGHTS = (  # tint, tint amount, brightness, light source
    ("night|moon|midnight|dark", ("1a2e6e", 0.45, 0.5, "moon")),
    ("golden|sunset|sunrise|dusk|warm", ("ff9238", 0.35, 1.0, "sunset")),
    ("neon", ("f028c8", 0.3, 0.7, "neon")),
    ("blue hour|twilight|cool", ("3a5ac8", 0.35, 0.8, "")),
    ("studio|spot|rim|low key|dramatic", ("fffaf0", 0.1, 0.75, "spot")),
    ("overcast|soft|diffuse|flat", ("c4c6cc", 0.35, 0.95, "")),
)
_DAYLIGHT = ("fffaeb", 0.0, 1.0, "sun")
_ANGLES = (  # horizon height (fraction of the frame), tilt
    ("bird|aerial|overhead|top|drone", (0.12, 0.0)),
    ("worm", (0.86, 0.0)),
    ("high", (0.34, 0.0)),
    ("low", (0.76, 0.0)),
    ("dutch|tilt|cant", (0.56, 0.16)),
)
_SHOTS = (  # head size of the subject (fraction of the frame height)
    ("extreme close|macro|detail", 0.75),
    ("close", 0.4),
    ("medium|mid|cowboy|waist", 0.17),
    ("extreme wide|extreme long|establish", 0.018),
    ("wide", 0.03),
    ("full|long", 0.07),
)
_WEATHER = (
    ("rain|storm|drizzle|shower", "rain"),
    ("snow|blizzard|sleet", "snow"),
    ("fog|mist|haze|smog", "fog"),
    ("cloud|overcast", "cloud"),
)


@dataclass(frozen=True)
class RenderSpec:
    """One shot to render: the job's parameters, the prompt to show (the job's generated one)
    and the reference images. The settings are matched by keyword, so free text works too."""

    job_id: str
    index: int
    prompt: str
    parameters: JobParameters
    references: tuple[Image.Image, ...] = ()


def image_size(aspect_ratio: str) -> tuple[int, int]:
    """The (width, height) we request and render for an aspect ratio such as "16:9"."""
    try:
        return _SIZES[aspect_ratio]
    except KeyError:
        raise ValueError(f"unsupported aspect ratio {aspect_ratio!r}") from None


def _match(value: str | None, table: Sequence[tuple[str, T]], default: T) -> T:
    text = (value or "").lower()
    return next((v for keys, v in table if any(k in text for k in keys.split("|"))), default)


def _hex(colours: str) -> list[RGB]:
    return [tuple(bytes.fromhex(c)) for c in colours.split()]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))


def _dominant_colours(image: Image.Image, count: int = 3) -> list[RGB]:
    """The image's main colours, most frequent first."""
    small = image.convert("RGB").resize((32, 32), Image.Resampling.BOX).quantize(count)
    ranked = sorted(small.convert("RGB").getcolors() or [], reverse=True)
    return [colour for _, colour in ranked if isinstance(colour, tuple)]


def _palette(spec: RenderSpec) -> tuple[list[RGB], list[RGB], str]:
    """Background colours, accent colours and light source from style, lighting and references."""
    style = (spec.parameters.style or "").lower()
    fallback = _STYLES[hashlib.sha256(style.encode()).digest()[0] % len(_STYLES)][1]
    base = _hex(_match(style, _STYLES, fallback) if style else _NATURAL)
    tint, amount, brightness, light = _match(spec.parameters.lighting, _LIGHTS, _DAYLIGHT)
    refs = [c for ref in spec.references[:4] for c in _dominant_colours(ref)]
    if refs:
        base = [_mix(c, refs[i % len(refs)], 0.5) for i, c in enumerate(base)]
    colours = [_mix((0, 0, 0), _mix(c, _hex(tint)[0], amount), brightness) for c in base]
    return colours, refs or [_mix(c, (255, 255, 255), 0.35) for c in colours], light


def _wrap(text: str, font: Font, width: float, max_lines: int) -> list[str]:
    """Greedy wrap at spaces (inside words too long for a line); overflow ends in an ellipsis."""
    advance = functools.cache(font.getlength)  # per character: measuring long strings is slow
    text = " ".join(text.split())
    lines: list[str] = []
    start, x = 0, 0.0
    for i, char in enumerate(text):
        x += advance(char)
        if x <= width:
            continue
        space = text.rfind(" ", start, i + 1)
        end = space if space > start else i
        lines.append(text[start:end])
        start = end + 1 if space > start else end
        if len(lines) == max_lines:  # and text remains
            last = lines[-1]
            while last and sum(map(advance, last + "…")) > width:
                last = last[:-1]
            return [*lines[:-1], last.rstrip() + "…"]
        x = sum(map(advance, text[start : i + 1]))
    return [*lines, text[start:]] if start < len(text) else lines


def _displayable(text: str) -> str:
    """Strips accents the built-in font lacks (é → e); other missing glyphs draw as boxes."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _glow(image: Image.Image, x: float, y: float, r: float, colour: RGB, core: bool = True) -> None:
    """A soft radial glow of radius 4r, with a solid disc of radius r when core."""
    size = max(2, round(8 * r))
    falloff = Image.radial_gradient("L").point(lambda v: max(0, 181 - v) ** 2 // 180)
    image.paste(colour, (round(x - size / 2), round(y - size / 2)), falloff.resize((size, size)))
    if core:
        ImageDraw.Draw(image).ellipse((x - r, y - r, x + r, y + r), fill=colour)


def _scene(spec: RenderSpec, size: tuple[int, int], rng: random.Random) -> tuple[Image.Image, Box]:
    """The soft background, drawn at low resolution and scaled up; and the subject's box."""
    colours, accents, light = _palette(spec)
    w, h = size[0] // _SCALE, size[1] // _SCALE
    horizon, tilt = _match(spec.parameters.camera_angle, _ANGLES, (0.62, 0.0))

    def y_at(x: float) -> float:
        return h * (horizon + tilt * (x / w - 0.5))

    image = Image.new("RGB", (w, h))
    draw = ImageDraw.Draw(image, "RGBA")
    for row in range(h):
        draw.line([(0, row), (w, row)], _mix(colours[0], colours[1], min(1, row / h / horizon)))
    x = w * rng.uniform(0.2, 0.8)
    if light in ("sun", "sunset", "moon"):
        y = y_at(x) - h * (0.06 if light == "sunset" else 0.3 * horizon + 0.04)
        _glow(image, x, y, h * 0.045, (232, 238, 255) if light == "moon" else (255, 238, 206))
    elif light == "neon":
        _glow(image, w * 0.22, h * 0.3, h * 0.12, (255, 60, 220), core=False)
        _glow(image, w * 0.78, h * 0.25, h * 0.1, (60, 230, 255), core=False)
    elif light == "spot":
        _glow(image, w / 2, h * 0.45, h * 0.16, (255, 246, 226), core=False)
    for _ in range(rng.randint(6, 10)):  # bokeh
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), h * rng.uniform(0.03, 0.12)
        draw.ellipse((x - r, y - r, x + r, y + r), (*rng.choice(accents), rng.randint(40, 90)))
    hills = [(w * i / 10, y_at(w * i / 10) - h * rng.uniform(0.02, 0.1)) for i in range(11)]
    draw.polygon([(0, h), *hills, (w, h)], (*_mix(colours[1], colours[2], 0.55), 220))
    top = min(y_at(0), y_at(w))
    ground, mask = Image.new("RGB", (w, h)), Image.new("L", (w, h))
    for row in range(int(top), h):
        colour = _mix(colours[2], colours[3], (row - top) / (h - top))
        ImageDraw.Draw(ground).line([(0, row), (w, row)], colour)
    ImageDraw.Draw(mask).polygon([(0, y_at(0)), (w, y_at(w)), (w, h), (0, h)], 255)
    image.paste(ground, mask=mask)
    weather = _match(spec.parameters.weather, _WEATHER, "")
    for _ in range(16 if weather in ("fog", "cloud") else 0):
        x = rng.uniform(-0.1, 1.1) * w
        y = y_at(x) - h * rng.uniform(0.0, 0.12 if weather == "fog" else 0.5)
        rx, ry = w * rng.uniform(0.08, 0.2), h * rng.uniform(0.03, 0.07)
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), (236, 238, 242, 100))
    x = w * (0.34 if spec.references or rng.random() < 0.5 else 0.66)
    d = h * _match(spec.parameters.shot_type, _SHOTS, 0.09)
    figure = _mix(_mix(colours[3], colours[0], 0.2), (0, 0, 0), 0.35)
    box = _figure(image, x, max(y_at(x) + 0.06 * h, 0.13 * h + 7.5 * d), d, figure)
    vignette = Image.radial_gradient("L").point(lambda v: v * (0.7 if light == "spot" else 0.4))
    image = Image.composite(Image.new("RGB", (w, h)), image, vignette.resize((w, h)))
    image = image.filter(ImageFilter.GaussianBlur(1.2)).resize(size, Image.Resampling.BILINEAR)
    return image, tuple(round(_SCALE * v) for v in box)


def _figure(image: Image.Image, x: float, base: float, d: float, colour: RGB) -> Box:
    """The subject: a standing figure with head size d and feet at base; returns its box."""
    y = base - 7.5 * d
    mask = Image.new("L", image.size)
    draw = ImageDraw.Draw(mask)
    draw.ellipse((x - d / 2, y, x + d / 2, y + d), 225)
    draw.rounded_rectangle((x - 1.05 * d, y + 1.1 * d, x + 1.05 * d, y + 4.2 * d), 0.8 * d, 225)
    draw.rounded_rectangle((x - 0.7 * d, y + 3.6 * d, x + 0.7 * d, base), 0.45 * d, 225)
    image.paste(colour, mask=mask)
    return (x - 1.5 * d, y - 0.4 * d, x + 1.5 * d, base)


def _particles(image: Image.Image, spec: RenderSpec, rng: random.Random) -> None:
    """Rain, snow or stars, drawn sharp at full resolution."""
    w, h = image.size
    draw = ImageDraw.Draw(image, "RGBA")
    weather = _match(spec.parameters.weather, _WEATHER, "")
    for _ in range(180 if weather in ("rain", "snow") else 0):
        x, y, n = rng.uniform(0, w * 1.1), rng.uniform(-0.05, 1) * h, h * rng.uniform(0.02, 0.05)
        if weather == "rain":
            draw.line([(x, y), (x - 0.3 * n, y + n)], (210, 220, 236, 90), width=2)
        else:
            draw.ellipse((x - n / 12, y - n / 12, x + n / 12, y + n / 12), (255, 255, 255, 190))
    if _match(spec.parameters.lighting, _LIGHTS, _DAYLIGHT)[3] == "moon":
        for _ in range(90):
            x, y, r = rng.uniform(0, w), rng.uniform(0, 0.45) * h, rng.uniform(0.6, 1.8)
            draw.ellipse((x - r, y - r, x + r, y + r), (255, 255, 240, rng.randint(90, 230)))


def _brackets(image: Image.Image, box: Box, limits: Box) -> None:
    """Viewfinder corner marks around the subject, kept within limits: the framing hint."""
    draw = ImageDraw.Draw(image, "RGBA")
    x0, y0 = max(box[0], limits[0]), max(box[1], limits[1])
    x1, y1 = min(box[2], limits[2]), min(box[3], limits[3])
    n = max(8, 0.2 * min(x1 - x0, y1 - y0))
    for x, y, dx, dy in ((x0, y0, 1, 1), (x1, y0, -1, 1), (x0, y1, 1, -1), (x1, y1, -1, -1)):
        corner = [(x + dx * n, y), (x, y), (x, y + dy * n)]
        draw.line(corner, (255, 255, 255, 180), width=3, joint="curve")


def _references(image: Image.Image, refs: Sequence[Image.Image], margin: int) -> None:
    """The reference images as framed prints along the top-right corner."""
    w, h = image.size
    draw = ImageDraw.Draw(image, "RGBA")
    aspects = [min(ref.width / ref.height, 1.5) for ref in refs[:4]]
    card = round(min(0.22 * min(w, h), 0.55 * w / (sum(aspects) + 0.2 * len(aspects) or 1)))
    border = max(4, card // 24)
    right = w - margin
    for ref in refs[:4]:
        thumb = ImageOps.contain(ref.convert("RGB"), (card * 3 // 2, card))
        left, bottom = right - thumb.width - 2 * border, margin + thumb.height + 2 * border
        shadow = (left + border, margin + border, right + border, bottom + border)
        draw.rectangle(shadow, (0, 0, 0, 80))
        draw.rectangle((left, margin, right, bottom), (250, 249, 244))
        image.paste(thumb, (left + border, margin + border))
        right = left - 2 * border


def _panel(image: Image.Image, spec: RenderSpec, margin: int) -> int:
    """The prompt, wrapped, and the caption on a translucent panel at the bottom; its top."""
    w, h = image.size
    draw = ImageDraw.Draw(image, "RGBA")
    pad, line_h = round(min(w, h) * 0.02), round(min(w, h) * 0.054)
    font = ImageFont.load_default(size=round(min(w, h) * 0.042))
    small = ImageFont.load_default(size=round(min(w, h) * 0.024))
    width = w - 2 * (margin + pad)
    lines = _wrap(_displayable(spec.prompt), font, width, max(2, int(h * 0.2 / line_h)))
    asked = spec.parameters
    shot = f"shot {spec.index}/{asked.number_of_shots} · fallback render"
    fields = (asked.style, asked.lighting, asked.camera_angle, asked.shot_type, asked.location)
    caption = " · ".join(filter(None, (shot, *fields, asked.weather, asked.aspect_ratio)))
    top = h - margin - 2 * pad - round((len(lines) + 0.8) * line_h)
    box = (margin, top, w - margin, h - margin)
    draw.rounded_rectangle(box, pad, (12, 14, 22, 150), (255, 255, 255, 48), width=2)
    y = top + pad
    for line in lines:
        draw.text((margin + pad + 2, y + 2), line, (0, 0, 0, 110), font)
        draw.text((margin + pad, y), line, (255, 255, 255, 255), font)
        y += line_h
    text = _wrap(_displayable(caption), small, width, 1)[0]
    draw.text((margin + pad, y + 0.1 * line_h), text, (255, 255, 255, 175), small)
    return top


def render_fallback(spec: RenderSpec) -> Image.Image:
    """A synthetic stand-in for one shot: the same spec always gives the same pixels."""
    w, h = size = image_size(spec.parameters.aspect_ratio)
    digest = hashlib.sha256(f"{spec.job_id}\x00{spec.index}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - decoration, not secrets
    image, subject = _scene(spec, size, rng)
    margin = round(min(w, h) * 0.04)
    _particles(image, spec, rng)
    top = _panel(image, spec, margin)
    _brackets(image, subject, (margin, margin, w - margin, top - margin // 2))
    _references(image, spec.references, margin)
    return image
