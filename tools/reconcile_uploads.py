"""Register every object under uploads/ that has no reference_images row, with progress output.

    python -m tools.reconcile_uploads [--batch-size 200] [--page-size 1000]

Uses the configured database and bucket (the same environment as the functions); safe to run
while uploads continue and any number of times. Log lines below WARNING are off unless LOG_LEVEL
says otherwise, so quarantined objects show up among the progress lines.
"""

from __future__ import annotations

import argparse
import os
import sys

from shared.uploads import reconcile


def _progress(counts: dict[str, int]) -> None:
    outcomes = ", ".join(
        f"{k} {v}" for k, v in sorted(counts.items()) if k not in ("checked", "missing")
    )
    print(
        f"checked {counts.get('checked', 0)}, missing {counts.get('missing', 0)}"
        + (f": {outcomes}" if outcomes else ""),
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.reconcile_uploads", description=__doc__)
    parser.add_argument("--batch-size", type=int, default=reconcile.BATCH_SIZE)
    parser.add_argument("--page-size", type=int, default=reconcile.PAGE_SIZE)
    args = parser.parse_args(argv)
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # progress lines, and only problems besides
    counts = reconcile.reconcile(
        reconcile.list_uploads_page(args.page_size),
        batch_size=args.batch_size,
        progress=_progress,
    )
    print("done:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
