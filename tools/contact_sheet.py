"""The demo's contact sheet: every reference and generated image, downloaded, on one HTML page."""

from __future__ import annotations

import html
import shutil
from pathlib import Path
from typing import Any

import requests

from shared.generation.parameters import JobParameters

PARAMETERS = tuple(name for name in JobParameters.model_fields if name != "prompt")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; background: #f5f4f0; color: #222; }
h1 { margin-bottom: .2rem; } .meta { color: #555; margin-top: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 1rem; }
figure { margin: 0; background: #fff; padding: .6rem; border-radius: 8px; box-shadow: 0 1px 3px #0002; }
figure img { width: 100%; height: auto; display: block; border-radius: 4px; }
figcaption { font-size: .85rem; color: #444; margin-top: .4rem; }
"""


def _download(url: str, target: Path) -> None:
    with requests.get(url, timeout=60, stream=True) as response:
        response.raise_for_status()
        with target.open("wb") as out:
            shutil.copyfileobj(response.raw, out)


def _or_dash(value: Any) -> Any:
    return "—" if value is None or value == "" else value


def _figure(src: str, caption: str) -> str:
    return (
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def write(
    out: Path,
    session: dict[str, Any],
    job: dict[str, Any],
    references: list[dict[str, Any]],
    images: list[dict[str, Any]],
) -> Path:
    """Download every image into out/images/ and write out/index.html; returns its path."""
    folder = out / "images"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    reference_figures = []
    for number, ref in enumerate(references, 1):
        name = f"reference-{number}.{ref['mime_type'].split('/')[-1]}"
        _download(ref["url"], folder / name)
        reference_figures.append(
            _figure(f"images/{name}", f"{ref['file_name']} · {ref['width']}x{ref['height']}")
        )
    result_figures = []
    for image in sorted(images, key=lambda i: i["generation_index"]):
        if image["generation_job_id"] != job["id"]:
            continue
        name = f"shot-{image['generation_index']}.jpg"
        _download(image["url"], folder / name)
        result_figures.append(
            _figure(
                f"images/{name}",
                f"shot {image['generation_index']}/{job['number_of_shots']} · "
                f"{image['width']}x{image['height']} · {image['generation_method']} · "
                f"{image['prompt_used']}",
            )
        )
    parameters = "".join(
        f"<dt>{html.escape(name)}</dt><dd>{html.escape(str(_or_dash(job.get(name))))}</dd>"
        for name in (*PARAMETERS, "generation_method", "model_used")
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(session["title"])}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(session["title"])}</h1>
<p class="meta">{session["generated_count"]} generated images · job {html.escape(str(job["id"]))}
· {html.escape(job["status"])}</p>
<h2>Prompt</h2><p>{html.escape(job["prompt"])}</p>
<h2>Prompt used</h2><p>{html.escape(job.get("generated_prompt") or "")}</p>
<h2>Parameters</h2><dl>{parameters}</dl>
<h2>References</h2><div class="grid">{"".join(reference_figures)}</div>
<h2>Results</h2><div class="grid">{"".join(result_figures)}</div>
</body></html>
"""
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
