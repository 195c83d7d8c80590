"""A function's import loads no client library, nor pydantic where none of its requests use a
model: each is loaded by the first request that needs it (issue 14, item 5;
docs/decisions/0004-layout.md). `bench/bench_cold_start.py` measures what that saves; this test
keeps it from regressing silently, as one top-level import of a client would.

Each function of the manifest is loaded in a fresh interpreter the way functions-framework loads
it (its source file by path, then its entry point), and `sys.modules` is read afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra import manifest

REPOSITORY = Path(__file__).resolve().parents[2]

# The libraries that some requests need and others do not, with what pulls them in.
HEAVY = (
    "google.cloud.pubsub_v1",  # and grpc: the first publish
    "grpc",
    "google.cloud.storage",  # the first object read, write or signed URL
    "google.auth",  # storage, pubsub, the connector, the api's token verification
    "requests",  # google-auth's transport
    "openai",  # the first model call
    "PIL",  # an upload's inspection, a shot's drawing
    "pg8000",  # the database: the first connection of the pool
    "sqlalchemy",  # its pool
    "google.cloud.sql.connector",  # Cloud SQL on GCP
    "pydantic",  # request, response and job-parameter models
)
# What a function's every real request needs may load with it.
NEEDED_BY_EVERY_REQUEST = {
    "api": {"pydantic"},  # the route table declares every route's models
    "plan-generation": {"pydantic"},  # the job's parameters
    "render-image": {"PIL", "pydantic"},  # every shot is drawn or re-encoded by Pillow
}

LOAD = """
import importlib.util, json, sys
from functions_framework import _function_registry

module, spec = _function_registry.load_function_module(sys.argv[1])
spec.loader.exec_module(module)
getattr(module, sys.argv[2])
heavy = json.loads(sys.argv[3])
print(json.dumps({
    "loaded": [name for name in heavy if name in sys.modules],
    "not_installed": [name for name in heavy if importlib.util.find_spec(name) is None],
}))
"""


@pytest.mark.parametrize("function", manifest.load().functions, ids=lambda f: f.name)
def test_importing_a_function_loads_no_client_library(function: manifest.Function) -> None:
    answer = subprocess.run(
        [sys.executable, "-c", LOAD, function.source, function.entry_point, json.dumps(HEAVY)],
        cwd=REPOSITORY,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(answer.stdout)
    assert found["not_installed"] == []  # a name that cannot load would pass unseen
    allowed = NEEDED_BY_EVERY_REQUEST.get(function.name, set())
    assert sorted(set(found["loaded"]) - allowed) == [], f"{function.source} loads them at import"
