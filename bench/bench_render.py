"""Cost of the fallback renderer: render + encode of one 16:9 shot against a bare JPEG encode.

Run from the repository root: `python bench/bench_render.py [runs]`. Prints the median of the
runs (after one warm-up) and the process's peak RSS.
"""

from __future__ import annotations

import io
import resource
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.measure import timings_ms


def median_ms(action: Callable[[], object], runs: int) -> float:
    # one warm-up: first-use costs (font decoding, codec set-up) are not per-shot costs
    return statistics.median(timings_ms(action, runs))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(runs: int) -> None:
    from PIL import Image, ImageDraw

    from shared.generation.codecs import encode_jpeg, load_reference
    from shared.generation.fallback_renderer import RenderSpec, render_fallback
    from shared.generation.parameters import JobParameters
    from tools.demo import DEMO_JOB

    landscape = Image.linear_gradient("L").convert("RGB").resize((1024, 768))
    ImageDraw.Draw(landscape).ellipse((200, 150, 800, 600), (200, 90, 40))
    prompt = (
        "A lighthouse on a cliff above a stormy sea at dusk, waves breaking on the rocks, "
        "gulls in the wind, one warm window lit " * 2
    )
    spec = RenderSpec(
        job_id="bench-job",
        index=1,
        prompt=prompt,
        # the demo's job: wide, low angle, golden hour light and rain (a storm)
        parameters=JobParameters.model_construct(**{**DEMO_JOB, "prompt": prompt}),
        references=(landscape, Image.new("RGB", (640, 480), (0, 200, 170))),
    )
    rendered = render_fallback(spec)

    def bare_encode() -> bytes:
        buffer = io.BytesIO()
        rendered.save(buffer, "JPEG")  # Pillow's defaults: quality 75, baseline, no optimize
        return buffer.getvalue()

    bare = median_ms(bare_encode, runs)
    rows = [
        ("render_fallback 1536x864, 2 references", median_ms(lambda: render_fallback(spec), runs)),
        (
            "encode_jpeg (q88, optimize, progressive)",
            median_ms(lambda: encode_jpeg(rendered), runs),
        ),
        ("render + encode", median_ms(lambda: encode_jpeg(render_fallback(spec)), runs)),
        ("bare JPEG encode of the same 1536x864 image", bare),
    ]
    rss_render = peak_rss_mib()
    photo = Image.linear_gradient("L").convert("RGB").resize((4032, 3024))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    del photo
    rows.append(
        (
            "load_reference of a 4032x3024 JPEG",
            median_ms(lambda: load_reference(buffer.getvalue()), runs),
        )
    )

    print(f"{'median of ' + str(runs) + ' runs':<50} {'ms':>7} {'x bare':>7}")
    for name, ms in rows:
        print(f"{name:<50} {ms:7.1f} {ms / bare:7.1f}")
    print(f"{'peak RSS after rendering (MiB)':<50} {rss_render:7.1f}")
    print(f"{'peak RSS after making + loading a 12 MP JPEG (MiB)':<50} {peak_rss_mib():7.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
