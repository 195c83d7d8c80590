"""A stand-in `gcloud` that records each call and answers as a new or an existing project would.

tests/infra/gcloud_cli.py puts it on PATH as `gcloud`. Every call appends its arguments as one
JSON line to $FAKE_GCLOUD_LOG. A file an argument names (`--cors-file=/dev/fd/63`, a process
substitution that is gone once the call returns) is copied beside the log, and the call is
recorded naming the copy. `describe` calls fail (nothing exists yet) unless
$FAKE_GCLOUD_EXISTING is set; lookups that the deploy scripts read print a plausible answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys

FILE_FLAG = re.compile(r"(--[a-z-]+-file=)(.+)")

PROJECT_NUMBER = "123456789"


def _flag(args: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return values[-1] if values else ""


def answer(args: list[str], existing: bool) -> tuple[int, str]:
    """(exit status, stdout) of one call."""
    project, region = _flag(args, "project"), _flag(args, "region") or _flag(args, "location")
    words = [a for a in args if not a.startswith("-")]
    if words[:2] == ["projects", "describe"]:
        return 0, PROJECT_NUMBER
    if words[:2] == ["storage", "service-agent"]:
        return 0, f"service-{PROJECT_NUMBER}@gs-project-accounts.iam.gserviceaccount.com"
    if words[:2] == ["functions", "describe"]:
        return 0, f"projects/{project}/locations/{region}/triggers/{words[2]}-000000"
    if words[:3] == ["eventarc", "triggers", "describe"]:
        return 0, f"projects/{project}/subscriptions/eventarc-{region}-{words[3]}-sub-000"
    if words[:3] == ["sql", "users", "list"]:
        return 0, _flag(args, "filter").removeprefix("name=") if existing else ""
    if "describe" in words:
        return (0, "") if existing else (1, "")
    return 0, ""


def _kept(arg: str, folder: str) -> str:
    """The argument, naming a lasting copy of the file it names (stdin, `-`, stays as it is)."""
    match = FILE_FLAG.fullmatch(arg)
    if match is None or match.group(2) == "-":
        return arg
    with open(match.group(2), "rb") as handle:
        content = handle.read()
    copy = os.path.join(folder, f"file-{hashlib.sha256(content).hexdigest()[:16]}")
    with open(copy, "wb") as handle:
        handle.write(content)
    return match.group(1) + copy


def main() -> int:
    log_path = os.environ["FAKE_GCLOUD_LOG"]
    args = [_kept(arg, os.path.dirname(log_path)) for arg in sys.argv[1:]]
    with open(log_path, "a") as log:
        log.write(json.dumps(["gcloud", *args]) + "\n")
    status, out = answer(args, existing=bool(os.environ.get("FAKE_GCLOUD_EXISTING")))
    if out:
        print(out)
    return status


if __name__ == "__main__":
    sys.exit(main())
