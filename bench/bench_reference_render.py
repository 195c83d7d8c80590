"""What the worst accepted upload costs a render: render_image's peak RSS and time for a 1-shot
fallback job whose reference is a highly compressible PNG at the pixel cap (12000x4166, about
200 KB, 200 MB decoded), beside the same job with a 1 MP photo as its reference (and with the
largest WebP the decode budget accepts, the costliest upload to register).

Run from the repository root: `python bench/bench_reference_render.py` (`make bench`). It starts
its own PostgreSQL (tools.pgcluster) and the Pub/Sub and GCS emulators, registers each upload
through register_upload's code (which makes its working copy), plans the job, and renders its
shot with `rendering.render_shot` in a fresh child process that has imported the function's
modules and made its clients and pool first, as a warm instance has. Each registration runs
in a child too, and so does, for comparison, decoding the PNG upload itself as the renderer did
per shot and per reference before working copies, and the first render of a job whose reference
was registered before working copies (it makes the copy, once). Target: the render's peak RSS
at most 256 MiB. Exits 1 when it is missed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_RENDER_RSS_MIB = 256


def _rss_mib() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and
    exec, so a child would report its parent's size."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024  # kB


def child() -> None:
    """Do one measured step named on stdin, in this fresh process; print its cost as JSON."""
    order = json.loads(sys.stdin.readline())
    os.environ.update(order["env"])
    from shared import config, db, pubsub, storage
    from shared.events import StorageObject
    from shared.generation import codecs, rendering
    from shared.uploads import registration

    storage.bucket().exists()  # clients and the pool made, as in a warm instance
    pubsub.publisher()
    with db.transaction() as conn:
        db.one(conn, "SELECT 1")
    before = _rss_mib()
    started = time.perf_counter()
    if order["step"] == "register":
        blob = storage.bucket().get_blob(order["name"])
        obj = StorageObject(config.settings().bucket, blob.name, blob.generation, blob.size, None)
        outcome = registration.register_object(obj)
    elif order["step"] == "render":
        rendering.render_shot(order["job_id"], 1)
        outcome = "rendered"
    else:  # what each shot paid for each reference before working copies
        codecs.load_reference(storage.read(order["name"]))
        outcome = "decoded"
    seconds = time.perf_counter() - started
    print(json.dumps({"outcome": outcome, "s": seconds, "before": before, "peak": _rss_mib()}))


def measure(env: dict[str, str], **order: Any) -> dict[str, Any]:
    process = subprocess.run(
        [sys.executable, __file__, "--child"],
        input=json.dumps({"env": env, **order}) + "\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(process.stdout.strip().splitlines()[-1])


def run() -> int:
    from shared import config, db, migrate, storage
    from shared.generation import planning, service
    from shared.generation.models import GenerationRequest
    from shared.limits import service as limits
    from shared.queries import reference_images, users
    from tools.fixtures import images as imagefactory
    from tools.fixtures import processes
    from tools.fixtures.cloud import Cloud

    cluster = processes.throwaway_cluster("bench-reference-render-pg-")
    os.environ.update(DATABASE_URL=cluster.url("postgres"), LOG_LEVEL="WARNING")
    cloud = Cloud()
    try:
        env = {**cloud.environ, "DATABASE_URL": cluster.url("postgres"), "LOG_LEVEL": "WARNING"}
        os.environ.update(env)
        os.environ.pop("OPENAI_API_KEY", None)  # the fallback renders: nothing is paid for
        config.settings.cache_clear()
        migrate.migrate()
        with db.transaction() as conn:
            user = users.get_or_create(conn, auth_subject="bench", email=None, display_name=None)
        uploads = {
            "1 MP photo (JPEG 1155x866)": imagefactory.jpeg(1155, 866, quality=90),
            "WebP at the decode budget (5120x3840)": imagefactory.webp_flat(5120, 3840),
            "PNG at the pixel cap (12000x4166)": imagefactory.png_flat(),
        }
        rows, ok = [], True
        for label, data in uploads.items():
            name = storage.upload_object_name(user["id"], "reference.bin")
            with db.transaction() as conn:
                limits.admit_upload(conn, user["id"], storage.bucket_path(name), len(data))
            storage.write(name, data, "application/octet-stream")
            registered = measure(env, step="register", name=name)
            with db.transaction() as conn:
                reference = reference_images.get_by_path(conn, storage.bucket_path(name))
            assert reference is not None, registered
            request = GenerationRequest(
                prompt="a lighthouse at dusk",
                number_of_shots=1,
                reference_image_ids=[str(reference["id"])],
            )
            job, _, _ = service.create(user["id"], request)
            planning.plan(job["id"])
            rendered = measure(env, step="render", job_id=str(job["id"]))
            copy = storage.bucket().get_blob(
                storage.object_name_from_bucket_path(reference["working_copy_path"])
            )
            ok &= rendered["peak"] <= MAX_RENDER_RSS_MIB and rendered["outcome"] == "rendered"
            rows.append((label, len(data), copy.size, registered, rendered))
        before = measure(env, step="decode", name=name)  # the PNG upload, the old way
        # The PNG as a reference registered before working copies: the first render makes it.
        with db.transaction() as conn:
            db.execute(
                conn,
                "UPDATE reference_images SET working_copy_path = NULL WHERE id = :id",
                {"id": reference["id"]},
            )
        job, _, _ = service.create(user["id"], request)
        planning.plan(job["id"])
        late = measure(env, step="render", job_id=str(job["id"]))
    finally:
        db.dispose()
        cloud.stop()
        cluster.destroy()
    _report(rows, before, late)
    return 0 if ok else 1


def _report(
    rows: list[tuple[str, int, int, dict[str, Any], dict[str, Any]]], old: Any, late: Any
) -> None:
    print("1-shot fallback job with one reference: each step in a fresh process, peak RSS of the")
    print(f"process (imports, clients and pool: {rows[0][4]['before']:.0f} MiB before the render)")
    print(f"{'reference':<40}{'upload':>8}{'copy':>8}{'register_upload':>20}{'render_image':>20}")
    for label, size, copy, register, render in rows:
        verdict = "ok" if render["peak"] <= MAX_RENDER_RSS_MIB else "OVER"
        print(
            f"{label:<40}{size / 1024:>6.0f}KB{copy / 1024:>6.0f}KB"
            f"{register['s']:>8.2f} s {register['peak']:>5.0f} MiB"
            f"{render['s']:>8.2f} s {render['peak']:>5.0f} MiB  {verdict}"
        )
    print(f"target: render_image's peak RSS <= {MAX_RENDER_RSS_MIB} MiB (register_upload has 512)")
    print(
        "decoding the PNG upload itself, as every shot did for every reference before working "
        f"copies: {old['s']:.2f} s, {old['peak']:.0f} MiB"
    )
    print(
        "the PNG as a reference registered before working copies, whose copy the first render "
        f"makes (once): {late['s']:.2f} s, {late['peak']:.0f} MiB"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child()
    else:
        sys.exit(run())
