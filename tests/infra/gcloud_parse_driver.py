"""Runs under the Google Cloud CLI's own Python and checks that gcloud accepts each command.

    <gcloud's python> gcloud_parse_driver.py <sdk root>  < commands (one JSON argv per line)

For each command it writes one JSON line, {"argv": [...], "accepted": bool, "error": "..."}.
gcloud parses the arguments, resolves every resource argument and starts the command; the first
request loads credentials, and that is where this stops it: nothing is sent. A command is
accepted when it gets that far. Run with a throwaway CLOUDSDK_CONFIG without a default
project, so that a resource gcloud would resolve from the default is rejected here.

A file gcloud reads only once it runs (`--cors-file`, `--lifecycle-file`) is read here by
gcloud's own converter: a field it does not know, which gcloud would drop without a word (or
an invalid lifecycle rule), rejects the command.
"""

import json
import os
import sys
import tempfile

SDK_LIB = os.path.join(sys.argv[1], "lib")
sys.path[:0] = [SDK_LIB, os.path.join(SDK_LIB, "third_party")]

from googlecloudsdk import gcloud_main  # noqa: E402
from googlecloudsdk.core.credentials import store  # noqa: E402


class ReachedFirstRequest(BaseException):
    """Raised where gcloud loads credentials; not an Exception, so gcloud does not handle it."""


def _stop(*args, **kwargs):
    raise ReachedFirstRequest


def file_problems(argv: list[str]) -> str:
    """What gcloud's converters find wrong in the files the command names ("" if nothing)."""
    from googlecloudsdk.api_lib.storage.gcs_json import metadata_field_converters

    converters = {
        "--cors-file=": metadata_field_converters.process_cors,
        "--lifecycle-file=": metadata_field_converters.process_lifecycle,
    }
    for arg in argv:
        for prefix, convert in converters.items():
            if arg.startswith(prefix):
                try:
                    converted = convert(arg[len(prefix) :])
                    entries = converted if isinstance(converted, list) else [converted]
                except Exception as error:  # reported as the command's error
                    return f"{prefix}: {error}"
                unknown = sorted({f for e in entries for f in e.all_unrecognized_fields()})
                if unknown:
                    return f"{prefix}: fields gcloud does not know: {unknown}"
    return ""


def check(cli, argv: list[str]) -> dict:
    """Runs one command with its error output captured from file descriptor 2."""
    with tempfile.TemporaryFile(mode="w+") as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            cli.Execute(argv[1:])
            accepted, status = False, "finished without a request"
        except ReachedFirstRequest:
            accepted, status = True, ""
        except SystemExit as exit_:
            accepted, status = False, f"exit status {exit_.code}"
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        error = (status + "\n" + captured.read()).strip()
    if accepted:
        error = file_problems(argv)
        accepted = not error
    return {"argv": argv, "accepted": accepted, "error": "" if accepted else error}


def main() -> None:
    commands = [json.loads(line) for line in sys.stdin.read().splitlines()]
    # A command may read its standard input (--data-file=-): give it an empty one.
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sys.stdin = open(os.devnull)  # noqa: SIM115 (for the life of the process)
    store.Load = _stop
    cli = gcloud_main.CreateCLI([])
    for argv in commands:
        print(json.dumps(check(cli, argv)), flush=True)


if __name__ == "__main__":
    main()
