"""Generation jobs on the local stack: does fan-out parallelise, and what does a shot cost?

Run from the repository root: `python bench/bench_generation.py` (`make bench`). It starts a
stack of its own as `make up` configures it (fresh state folder, ports moved by PORT_SHIFT beyond
STACK_PORT_OFFSET, so it runs beside `make up`), an OpenAI fake process, restarts
plan-generation and render-image pointed at the fake (tools/fixtures/generation_stack), and
removes the stack at the end.

1. Fan-out: with 2 s of latency on every model call, the wall time (creation to completion)
   of a 10-shot job ÷ that of a 1-shot job, both measured in this run. Target ≤ 1.2: the
   shots must render in parallel: the stack pushes render-requests as many at once as
   render-image has instances, as Pub/Sub does on GCP (tools/stack/pusher.py).
2. Overhead: with the fallback renderer, in this process against the stack's database and
   bucket, the median per-image cost of render_shot minus the drawing itself (render_fallback),
   ÷ the floor of one JPEG encode + one object write + one row insert. Target ≤ 2.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.fixtures.generation_stack import (  # noqa: E402
    GenerationStack,
    stack_command,
    stack_config,
)
from tools.fixtures.processes import wait_for  # noqa: E402

LATENCY_SECONDS = 2.0
SHOTS = 10
CLAIM = "bench-planner"  # the plan claim this script takes in place of plan-generation


def job_seconds(gen: GenerationStack, token: str, shots: int) -> float:
    """From the job's creation to its completion, by the database's clock.

    Read from the row, not by polling GET /v1/generations/{id}: that signs a URL per image and
    thumbnail, which would add its own seconds to a 10-image job.
    """
    body = {"prompt": "a fox", "number_of_shots": shots}
    answer = gen.api(token, "POST", "/v1/generations", body)
    assert answer.status_code == 202, answer.text
    done = wait_for(
        lambda: gen.sql(
            """SELECT status, EXTRACT(EPOCH FROM completed_at - created_at) AS took
                 FROM generation_jobs WHERE id = CAST(:id AS uuid) AND completed_at IS NOT NULL""",
            id=answer.json()["id"],
        ),
        120,
        "the job to finish",
        interval=0.1,
    )[0]
    assert done["status"] == "completed", done
    return float(done["took"])


def fan_out(gen: GenerationStack) -> tuple[float, float]:
    """(1-shot, 10-shot) wall times with the model's latency injected."""
    token = gen.token("bench")
    job_seconds(gen, token, 2)  # warm-up: first imports and connections of every process
    gen.fake_control("config", {"latency_seconds": LATENCY_SECONDS})
    try:
        return job_seconds(gen, token, 1), job_seconds(gen, token, SHOTS)
    finally:
        gen.fake_control("config", {"latency_seconds": 0})


def _use_stack(env: dict[str, str]) -> None:
    names = ("DATABASE_URL", "GCP_PROJECT", "BUCKET_NAME", "STORAGE_EMULATOR_HOST")
    os.environ.update({n: env[n] for n in (*names, "PUBSUB_EMULATOR_HOST")})
    os.environ.pop("OPENAI_API_KEY", None)


def overhead(env: dict[str, str]) -> tuple[float, float]:
    """(median per-image pipeline overhead, median floor), in milliseconds."""
    _use_stack(env)
    from shared import db, storage
    from shared.generation import codecs, fallback_renderer, rendering
    from shared.generation.parameters import JobParameters
    from shared.queries import generated_images, job_runs, jobs, sessions, users

    with db.transaction() as conn:  # a job ready to render, whose shots nobody else receives
        user = users.get_or_create(conn, auth_subject="bench", email=None, display_name=None)
        session = sessions.create(conn, user_id=user["id"])
        job = jobs.create(
            conn,
            user_id=user["id"],
            session_id=session["id"],
            parameters=JobParameters(
                prompt="a fox", number_of_shots=SHOTS, aspect_ratio="16:9"
            ).columns(),
            deadline_seconds=900,
        )
        floor_job = jobs.create(
            conn,
            user_id=user["id"],
            session_id=None,
            parameters=JobParameters(prompt="floor", number_of_shots=SHOTS).columns(),
            deadline_seconds=900,
        )
        claim = {"job_id": job["id"], "token": CLAIM}
        job_runs.claim_plan(conn, seconds=60, **claim)
        job = job_runs.start(conn, generated_prompt="a fox, at dusk", **claim)
        job_runs.mark_dispatched(conn, **claim)
    pipeline, drawing, floor = [], [], []
    for index in range(1, SHOTS + 1):
        spec = fallback_renderer.RenderSpec(
            job_id=str(job["id"]),
            index=index,
            prompt="a fox",
            parameters=JobParameters(prompt="a fox", number_of_shots=SHOTS, aspect_ratio="16:9"),
        )
        started = time.perf_counter()
        image = fallback_renderer.render_fallback(spec)
        drawing.append(time.perf_counter() - started)

        started = time.perf_counter()
        rendering.render_shot(job["id"], index)
        pipeline.append(time.perf_counter() - started)

        started = time.perf_counter()
        data = codecs.encode_jpeg(image)
        name = f"generated/{floor_job['id']}/{index}_floor.jpg"
        storage.write(name, data, "image/jpeg")
        with db.transaction() as conn:
            generated_images.record(
                conn,
                job_id=floor_job["id"],
                user_id=user["id"],
                session_id=None,
                gcp_bucket_path=storage.bucket_path(name),
                gcp_url=storage.canonical_url(name),
                file_name=name,
                file_size=len(data),
                width=image.width,
                height=image.height,
                prompt_used="floor",
                generation_index=index,
                generation_method="fallback",
            )
        floor.append(time.perf_counter() - started)
    with db.transaction() as conn:
        assert jobs.get(conn, job["id"])["status"] == "completed"
        db.execute(conn, "DELETE FROM generation_jobs WHERE id = :id", {"id": floor_job["id"]})
    per_image = statistics.median(p - d for p, d in zip(pipeline[1:], drawing[1:], strict=True))
    return per_image * 1000, statistics.median(floor[1:]) * 1000  # the first shot warms up


PORT_SHIFT = 300  # the bench's stack runs beside a `make up` one


def throwaway_stack() -> Path:
    """Point this process (and the stack commands it runs) at a stack of its own: a fresh state
    folder, so the bucket starts empty (the GCS emulator rewrites its whole index on every write:
    a long-used bucket makes each write slower), and every port moved by PORT_SHIFT beyond the
    caller's STACK_PORT_OFFSET."""
    state = Path(tempfile.mkdtemp(prefix="imagegen-bench-generation-"))
    state.chmod(0o755)
    shift = PORT_SHIFT + int(os.environ.get("STACK_PORT_OFFSET") or 0)
    os.environ.update(STACK_DIR=str(state), STACK_PORT_OFFSET=str(shift))
    return state


def remove_stack(state: Path) -> None:
    stack_command("down")
    pg = state / "postgres"
    if pg.is_symlink():  # as root, the cluster may live under /tmp
        shutil.rmtree(pg.resolve(), ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)


def main() -> int:
    state = throwaway_stack()
    try:
        print("starting the bench's own stack ...", flush=True)
        stack_command("up")
        config = stack_config()
        env = dict(
            line.split("=", 1) for line in config.env_file.read_text().splitlines() if "=" in line
        )
        gen = GenerationStack(env)
        try:
            one, ten = fan_out(gen)
        finally:
            gen.restore()
        cost, floor = overhead(env)
    finally:
        remove_stack(state)
    fan = ten / one
    ratio = cost / floor
    print(f"{'1-shot job, 2 s model latency':<52}{one:8.2f} s")
    print(f"{f'{SHOTS}-shot job, 2 s model latency':<52}{ten:8.2f} s")
    print(f"{'fan-out: 10-shot ÷ 1-shot (target <= 1.2)':<52}{fan:8.2f}  {_verdict(fan, 1.2)}")
    print(f"{'per-image pipeline overhead (fallback, no drawing)':<52}{cost:8.1f} ms")
    print(f"{'floor: JPEG encode + object write + row insert':<52}{floor:8.1f} ms")
    print(f"{'overhead ÷ floor (target <= 2)':<52}{ratio:8.2f}  {_verdict(ratio, 2)}")
    return 0


def _verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "MISSED"


if __name__ == "__main__":
    sys.exit(main())
