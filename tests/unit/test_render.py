"""The Pillow helpers: image sizes, the fallback renderer, reference decoding, JPEG encoding."""

from __future__ import annotations

import dataclasses
import io
from fractions import Fraction

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageStat

from shared.generation.codecs import encode_jpeg, load_reference, thumbnail_jpeg
from shared.generation.fallback_renderer import (
    _SIZES,
    RenderSpec,
    _wrap,
    image_size,
    render_fallback,
)
from shared.generation.parameters import JobParameters
from shared.vocabulary import ASPECT_RATIOS

PROMPT = "A lighthouse on a cliff above a stormy sea, waves breaking on the rocks"
SPEC = RenderSpec(
    job_id="3f1c9a70-0000-4000-8000-000000000001",
    index=2,
    prompt=PROMPT,
    # free text, as the renderer matches settings by keyword (not only the vocabulary's words)
    parameters=JobParameters.model_construct(
        prompt=PROMPT,
        number_of_shots=4,
        shot_type="wide shot",
        camera_angle="low angle",
        style="cinematic",
        location="Brittany",
        lighting="night",
        weather="rain",
        aspect_ratio="16:9",
    ),
)
TEAL = (0, 200, 170)  # a colour no palette or effect of the renderer produces on its own


def spec(**change: object) -> RenderSpec:
    """SPEC with some of its fields (`prompt` is the spec's) or parameters changed."""
    own = {field.name for field in dataclasses.fields(RenderSpec)}
    asked = {k: change.pop(k) for k in list(change) if k not in own}
    return dataclasses.replace(SPEC, parameters=SPEC.parameters.model_copy(update=asked), **change)


def teal_reference() -> Image.Image:
    return Image.new("RGB", (300, 200), TEAL)


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def count_near(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 8) -> int:
    bands = [
        band.point(lambda v, c=c: 255 if abs(v - c) <= tolerance else 0)
        for band, c in zip(image.split(), colour, strict=True)
    ]
    mask = ImageChops.multiply(ImageChops.multiply(bands[0], bands[1]), bands[2])
    return mask.histogram()[255]


def jpeg_bytes(image: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **params)
    return buffer.getvalue()


def png_bytes(image: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **params)
    return buffer.getvalue()


# --- sizes ---


def test_every_ratio_of_the_vocabulary_has_a_size() -> None:
    assert set(_SIZES) == set(ASPECT_RATIOS)


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_every_ratio_has_an_exact_size_with_sides_divisible_by_16(ratio: str) -> None:
    width, height = image_size(ratio)
    a, b = (int(part) for part in ratio.split(":"))
    assert width % 16 == 0
    assert height % 16 == 0
    assert Fraction(width, height) == Fraction(a, b)
    assert max(width, height) == (1024 if a == b else 1536)


@pytest.mark.parametrize("ratio", ["5:4", "21:9", "16x9", "", "1:1 "])
def test_unknown_ratio_raises(ratio: str) -> None:
    with pytest.raises(ValueError, match="aspect ratio"):
        image_size(ratio)


# --- fallback renderer ---


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_render_is_rgb_at_the_requested_size(ratio: str) -> None:
    image = render_fallback(spec(aspect_ratio=ratio))
    assert image.mode == "RGB"
    assert image.size == image_size(ratio)


def test_render_is_deterministic() -> None:
    snowing = spec(references=(teal_reference(),), weather="snow")
    assert encode_jpeg(render_fallback(snowing)) == encode_jpeg(render_fallback(snowing))


@pytest.mark.parametrize("change", [{"index": 3}, {"job_id": "another-job"}])
def test_another_shot_or_job_gives_other_pixels(change: dict[str, object]) -> None:
    first = render_fallback(SPEC)
    other = render_fallback(spec(**change))
    assert mean_difference(first, other) > 2


def test_parameters_change_the_picture() -> None:
    base = render_fallback(SPEC)
    for change in ({"style": "anime"}, {"lighting": "golden hour"}, {"camera_angle": "high angle"}):
        assert mean_difference(base, render_fallback(spec(**change))) > 2


def test_references_are_visibly_used() -> None:
    without = render_fallback(SPEC)
    with_reference = render_fallback(spec(references=(teal_reference(),)))
    assert mean_difference(without, with_reference) > 5
    assert count_near(without, TEAL) < 100
    # the reference is shown (a framed print) and its colour tints the scene
    assert count_near(with_reference, TEAL) > 10_000


def test_several_references_are_all_shown() -> None:
    colours = [(230, 20, 20), (20, 20, 230), TEAL]
    references = tuple(Image.new("RGB", (200, 200), colour) for colour in colours)
    image = render_fallback(spec(references=references, lighting=None))
    for colour in colours:
        assert count_near(image, colour) > 5_000


def test_prompt_text_is_drawn_on_the_panel() -> None:
    first = render_fallback(spec(prompt="A red fox in the snow"))
    second = render_fallback(spec(prompt="An old owl on a branch"))
    width, height = first.size
    # only the panel at the bottom differs: the text, not the scene, changed
    top = (0, 0, width, height // 2)
    assert ImageChops.difference(first.crop(top), second.crop(top)).getbbox() is None
    bottom = (0, height * 3 // 4, width, height)
    assert mean_difference(first.crop(bottom), second.crop(bottom)) > 1


@pytest.mark.parametrize(
    "prompt",
    [
        "Café crème à Paris, façade Ørsted, naïve Straße",
        "東京の夜、雨に濡れた路地 🌧️🏮 neon 👩‍🚀 ok",
        "مرحبا بالعالم — שלום \u200b\u200d zero-width\tand\ncontrol \x00 chars",
        "",
        "word " * 400,
        "東" * 2000,
        "x" * 2000,
    ],
)
def test_any_prompt_renders(prompt: str) -> None:
    image = render_fallback(spec(prompt=prompt, aspect_ratio="9:16"))
    assert image.size == image_size("9:16")


def test_long_text_is_wrapped_to_the_width_and_truncated_with_an_ellipsis() -> None:
    font = ImageFont.load_default(size=30)
    for text in ("lorem ipsum dolor " * 100, "東" * 2000, "a" * 500 + " tail"):
        lines = _wrap(text, font, 600, 4)
        assert len(lines) == 4
        assert lines[-1].endswith("…")
        assert all(0 < font.getlength(line) <= 600 for line in lines)
    assert _wrap("  short   text\n", font, 600, 4) == ["short text"]
    assert _wrap("one two three", font, font.getlength("one two"), 4) == ["one two", "three"]


# --- reference decoding ---


def test_load_reference_applies_exif_orientation() -> None:
    stored = Image.new("RGB", (200, 100), (230, 20, 20))
    ImageDraw.Draw(stored).rectangle((100, 0, 199, 99), (20, 20, 230))  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    image = load_reference(jpeg_bytes(stored, exif=exif, quality=95))
    assert image.size == (100, 200)
    red, blue = image.getpixel((50, 50)), image.getpixel((50, 150))
    assert isinstance(red, tuple) and isinstance(blue, tuple)
    assert red[0] > 180 > red[2]
    assert blue[2] > 180 > blue[0]


def test_load_reference_converts_cmyk() -> None:
    image = load_reference(jpeg_bytes(Image.new("CMYK", (64, 64), (0, 255, 255, 0))))
    assert image.mode == "RGB"
    assert count_near(image, (255, 0, 0), tolerance=12) == 64 * 64


def test_load_reference_composites_a_transparent_palette_png_over_white() -> None:
    palette = Image.new("P", (40, 20), 0)
    palette.putpalette([0, 0, 0, 230, 20, 20])
    ImageDraw.Draw(palette).rectangle((20, 0, 39, 19), 1)
    image = load_reference(png_bytes(palette, transparency=0))
    assert image.mode == "RGB"
    assert image.getpixel((5, 5)) == (255, 255, 255)
    assert image.getpixel((30, 5)) == (230, 20, 20)


def test_load_reference_scales_16_bit_grayscale_instead_of_clipping() -> None:
    ramp = Image.linear_gradient("L").resize((64, 64)).convert("I").point(lambda v: v * 257)
    image = load_reference(png_bytes(ramp.convert("I;16")))
    assert Image.open(io.BytesIO(png_bytes(ramp.convert("I;16")))).mode.startswith("I")
    assert image.mode == "RGB"
    low, middle, high = (image.getpixel((0, y)) for y in (0, 32, 63))
    assert isinstance(low, tuple) and isinstance(middle, tuple) and isinstance(high, tuple)
    assert low[0] < 10 and 110 < middle[0] < 145 and high[0] > 245


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_load_reference_composites_alpha_over_white(mode: str) -> None:
    source = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    ImageDraw.Draw(source).rectangle((10, 0, 19, 9), (0, 0, 0, 128))
    image = load_reference(png_bytes(source.convert(mode)))
    assert image.mode == "RGB"
    assert image.getpixel((2, 2)) == (255, 255, 255)
    half = image.getpixel((15, 5))
    assert isinstance(half, tuple) and 120 <= half[0] <= 135


def test_load_reference_downscales_to_max_side() -> None:
    photo = Image.linear_gradient("L").convert("RGB").resize((3000, 1000))
    assert load_reference(jpeg_bytes(photo)).size == (1024, 341)
    assert max(load_reference(jpeg_bytes(photo), max_side=256).size) == 256
    assert load_reference(png_bytes(photo.resize((300, 100)))).size == (300, 100)


# --- encoding ---


def test_encode_jpeg_is_progressive_deterministic_and_without_metadata() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    source = Image.open(io.BytesIO(jpeg_bytes(render_fallback(SPEC), exif=exif, comment=b"hi")))
    assert source.info.get("exif") and source.info.get("comment")
    data = encode_jpeg(source)
    assert data == encode_jpeg(source)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "JPEG"
    assert decoded.mode == "RGB"
    assert decoded.info.get("progressive") or decoded.info.get("progression")
    assert not decoded.getexif()
    assert not {"exif", "comment", "icc_profile", "xmp"} & decoded.info.keys()


def test_encode_jpeg_converts_to_rgb() -> None:
    data = encode_jpeg(Image.new("RGBA", (32, 16), (10, 20, 30, 255)))
    assert Image.open(io.BytesIO(data)).mode == "RGB"


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((1536, 864), 384, (384, 216)),
        ((864, 1536), 384, (216, 384)),
        ((1000, 700), 384, (384, 269)),  # a whole-factor reduce, then Lanczos the rest
        ((3001, 7), 384, (384, 1)),
        ((100, 50), 384, (100, 50)),
    ],
)
def test_thumbnail_bounds(size: tuple[int, int], max_side: int, expected: tuple[int, int]) -> None:
    data, width, height = thumbnail_jpeg(Image.new("RGB", size, (90, 120, 150)), max_side)
    assert (width, height) == expected
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "JPEG"
    assert decoded.size == expected


def test_thumbnail_keeps_the_picture() -> None:
    image = Image.new("RGB", (1536, 864), (220, 20, 20))
    image.paste((20, 20, 220), (768, 0, 1536, 864))  # left red, right blue
    data, width, _ = thumbnail_jpeg(image, 384)
    thumb = Image.open(io.BytesIO(data)).convert("RGB")
    left, right = thumb.getpixel((20, 100)), thumb.getpixel((width - 20, 100))
    assert left[0] > 180 and left[2] < 60
    assert right[2] > 180 and right[0] < 60
