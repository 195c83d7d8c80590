"""A cold gallery page on GCP's signing cost: 20 images, each with a thumbnail, 40 signed URLs.

On Cloud Functions every signature is an IAM signBlob round trip. This models it with a signer
that adds 50 ms to each signature where the signature is made (`sign_bytes`, what
google-cloud-storage calls) and then signs with a throwaway key. The page is served through the
api's dispatcher against a throwaway PostgreSQL 15, cold (nothing in the process's URL cache),
once with the URLs signed one at a time and once as the api signs them (one concurrent batch,
at most storage.SIGNING_CONCURRENCY at a time); then warm, from the cache.

    python bench/bench_gallery_signing.py     # about 30 s
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from google.auth import credentials as auth_credentials  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from bench.api_support import signing_key_file  # noqa: E402
from tools.fixtures import processes  # noqa: E402
from tools.pgcluster import connect  # noqa: E402

SIGNATURE_SECONDS = 0.050
IMAGES = 20
RUNS = 5


class SlowSigner(auth_credentials.Signing):
    """A service-account key whose every signature first waits, as a signBlob call would."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def sign_bytes(self, message: bytes) -> bytes:
        time.sleep(SIGNATURE_SECONDS)
        return bytes(self.inner.sign_bytes(message))

    @property
    def signer_email(self) -> str:
        return str(self.inner.signer_email)

    @property
    def signer(self) -> Any:
        return self.inner.signer


def seed(url: str, sessions: int) -> tuple[str, list[str]]:
    """One user and `sessions` sessions of IMAGES images each (jobs of 4 shots)."""
    conn = connect(url)
    try:
        user = conn.run("INSERT INTO users (auth_subject) VALUES ('viewer') RETURNING id")[0][0]
        found = []
        for _ in range(sessions):
            session = conn.run("INSERT INTO sessions (user_id) VALUES (:u) RETURNING id", u=user)[
                0
            ][0]
            for _ in range(IMAGES // 4):
                job = conn.run(
                    """INSERT INTO generation_jobs (user_id, session_id, prompt, number_of_shots,
                       status) VALUES (:u, :s, 'p', 4, 'completed') RETURNING id""",
                    u=user,
                    s=session,
                )[0][0]
                for index in range(1, 5):
                    name = f"generated/{job}/{index}_20261201T000000000000Z.jpg"
                    conn.run(
                        """INSERT INTO generated_images (generation_job_id, user_id, session_id,
                           gcp_bucket_path, gcp_url, thumbnail_url, file_name, file_size,
                           generation_index) VALUES (:j, :u, :s, :path, :url, :thumb, :file,
                           1000, :i)""",
                        j=job,
                        u=user,
                        s=session,
                        path=f"video-gen-image-bucket/{name}",
                        url=f"https://storage.googleapis.com/video-gen-image-bucket/{name}",
                        thumb=f"https://storage.googleapis.com/video-gen-image-bucket/thumbnails/{name}",
                        file=name.rsplit("/", 1)[1],
                        i=index,
                    )
            found.append(str(session))
        return str(user), found
    finally:
        conn.close()


def page_ms(user_id: str, session_id: str) -> float:
    from shared import routes
    from shared.web import dispatch

    request = EnvironBuilder(path=f"/v1/sessions/{session_id}/images", query_string="limit=20")
    started = time.perf_counter()
    response = dispatch.dispatch(routes.router(), request.get_request(), lambda _: {"id": user_id})
    took = (time.perf_counter() - started) * 1000
    assert response.status_code == 200 and len(response.get_json()["items"]) == IMAGES
    return took


def main() -> int:
    cluster = processes.throwaway_cluster("bench-signing-")
    try:
        url = cluster.ensure_database("bench")
        os.environ.update(
            DATABASE_URL=url,
            SIGNING_CREDENTIALS_FILE=str(signing_key_file(cluster.root / "key")),
            STORAGE_EMULATOR_HOST="http://127.0.0.1:9",  # signing makes no call to it
            LOG_LEVEL="WARNING",
        )
        from shared import db, migrate, storage

        migrate.migrate()
        user_id, sessions = seed(url, 2 * RUNS + 1)
        slow = SlowSigner(storage._key_credentials(os.environ["SIGNING_CREDENTIALS_FILE"]))
        storage._signing_arguments = lambda: {"credentials": slow}
        page_ms(user_id, sessions[-1])  # warm the process: imports, pool, prepared statements

        rows = []
        for label, concurrency, pages in [
            ("cold, signed one at a time", 1, sessions[:RUNS]),
            (f"cold, one batch (<= {storage.SIGNING_CONCURRENCY} at once)",
             storage.SIGNING_CONCURRENCY, sessions[RUNS : 2 * RUNS]),
        ]:  # fmt: skip
            storage.signed_urls = storage._SignedUrlCache(concurrency=concurrency)
            rows.append((label, [page_ms(user_id, s) for s in pages]))
        warm = [page_ms(user_id, sessions[RUNS]) for _ in range(RUNS)]  # signed just now
        rows.append(("warm (every URL from the cache)", warm))
        print(
            f"gallery page: {IMAGES} images + thumbnails = {2 * IMAGES} signed URLs, "
            f"{SIGNATURE_SECONDS * 1000:.0f} ms per signature (modelling IAM signBlob)"
        )
        print(f"{'':<40}{'median ms':>10}{'min':>8}{'max':>8}")
        for label, timings in rows:
            print(
                f"{label:<40}{statistics.median(timings):>10.0f}"
                f"{min(timings):>8.0f}{max(timings):>8.0f}"
            )
        sequential, batched = (statistics.median(t) for _, t in rows[:2])
        print(f"one batch vs one at a time: {sequential / batched:.1f}x faster")
        db.dispose()
        return 0 if batched < sequential / 4 else 1
    finally:
        cluster.destroy()


if __name__ == "__main__":
    sys.exit(main())
