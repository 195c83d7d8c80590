"""Cost of registering a 24-megapixel JPEG: bytes read from storage and the handler's peak RSS.

Run from the repository root: `python bench/bench_register_upload.py`. Starts its own
gcp-storage-emulator and throwaway PostgreSQL (tools.pgcluster), stores the photo under
uploads/{user}/ with its upload ticket, then runs `registration.register_object` in a child
process that counts the bytes its ranged reads return (what accepting or refusing the upload
reads) and its whole reads (the one read of an accepted upload, for its working copy), and
reports `ru_maxrss` before the handler (imports, clients and the pool, as in a warm instance)
and after it (the peak). Targets: at most 256 KiB read to decide, one whole read, and 64 MiB
added by the handler (the working copy's decode, at half scale). The process total is printed
too: the imports alone take about 74 MiB (google-cloud-storage 56 of them), more than any
handler could save. Exits 1 when a target is missed.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_READ = 256 * 1024
MAX_RSS_MIB = 64


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child() -> None:
    """Wait for an object on stdin, register it as the trigger would; print the cost as JSON.

    Started before the parent grows (Linux carries the RSS high-water mark across fork and
    exec), it reads the object and the environment from stdin once the parent has stored it.
    """
    order = json.loads(sys.stdin.readline())
    os.environ.update(order["env"])
    from shared import config, db, storage
    from shared.events import StorageObject
    from shared.uploads import registration

    storage.bucket().exists()  # clients and the pool made, as in a warm instance
    with db.transaction() as conn:
        db.one(conn, "SELECT 1")
    before = _rss_mib()
    served: list[int] = []
    whole: list[int] = []
    read_range, read = storage.read_range, storage.read

    def counting(*args: object, **kwargs: object) -> bytes:
        data = read_range(*args, **kwargs)  # type: ignore[arg-type]
        served.append(len(data))
        return data

    def reading(*args: object, **kwargs: object) -> bytes:
        data = read(*args, **kwargs)  # type: ignore[arg-type]
        whole.append(len(data))
        return data

    storage.read_range = counting  # type: ignore[assignment]
    storage.read = reading  # type: ignore[assignment]
    obj = StorageObject(
        config.settings().bucket, order["name"], order["generation"], order["size"], "image/jpeg"
    )
    outcome = registration.register_object(obj)
    report = {"outcome": outcome, "read": sum(served), "reads": len(served), "whole": whole}
    print(json.dumps({**report, "rss_before": before, "rss_peak": _rss_mib()}))


def main() -> int:
    measured = subprocess.Popen(
        [sys.executable, __file__, "--child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        return _run(measured)
    finally:
        measured.kill()
        measured.wait()


def _run(measured: subprocess.Popen[str]) -> int:
    from shared import config, db, migrate, storage
    from shared.limits import service as limits
    from shared.queries import users
    from tools.fixtures import images as imagefactory
    from tools.fixtures import processes

    emulator = processes.gcs_emulator()
    cluster = processes.throwaway_cluster("bench-register-upload-pg-")
    try:
        env = {
            "DATABASE_URL": cluster.url("postgres"),
            "STORAGE_EMULATOR_HOST": emulator.url,
            "BUCKET_NAME": "bench-bucket",
            "LOG_LEVEL": "WARNING",
        }
        os.environ.update(env)
        config.settings.cache_clear()
        migrate.migrate()
        storage.client().create_bucket("bench-bucket")
        with db.transaction() as conn:
            user = users.get_or_create(conn, auth_subject="bench", email=None, display_name="bench")
            photo = imagefactory.jpeg_24mp()
            name = storage.upload_object_name(user["id"], "camera.jpg")
            limits.admit_upload(conn, user["id"], storage.bucket_path(name), len(photo))
        db.dispose()
        blob = storage.write(name, photo, "image/jpeg")
        del photo
        order = {"env": env, "name": name, "generation": blob.generation, "size": blob.size}
        output, _ = measured.communicate(json.dumps(order) + "\n", timeout=120)
        result = json.loads(output.strip().splitlines()[-1])
    finally:
        emulator.stop()
        cluster.destroy()
    handler_mib = result["rss_peak"] - result["rss_before"]
    read_ok = result["read"] <= MAX_READ and result["whole"] == [blob.size]
    rss_ok = handler_mib <= MAX_RSS_MIB
    rows = [
        ("file size (bytes)", f"{blob.size:>10}", ""),
        (
            f"read to decide (bytes, {result['reads']} ranged reads)",
            f"{result['read']:>10}",
            f"target <= {MAX_READ}  {'ok' if read_ok else 'OVER'}",
        ),
        ("read for the working copy (bytes)", f"{sum(result['whole']):>10}", "one whole read"),
        (
            "process RSS before the handler (MiB)",
            f"{result['rss_before']:>10.1f}",
            "imports, clients, pool",
        ),
        ("process peak RSS (MiB)", f"{result['rss_peak']:>10.1f}", ""),
        (
            "peak RSS added by the handler (MiB)",
            f"{handler_mib:>10.1f}",
            f"target <= {MAX_RSS_MIB}  {'ok' if rss_ok else 'OVER'}",
        ),
    ]
    print(f"register_upload of a 6000x4000 JPEG: {result['outcome']}")
    for label, value, note in rows:
        print(f"{label:<44} {value}  {note}".rstrip())
    return 0 if read_ok and rss_ok and result["outcome"] == "registered" else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child()
    else:
        sys.exit(main())
