"""Writes infra/terraform/functions.auto.tfvars.json from infra/functions.toml and infra/cors.py.

Terraform cannot read TOML nor Python, so the manifest (APIs, dead-letter holds, functions,
topics, schedules) and the media bucket's CORS rule (`bucket_cors`, all but its origins) reach it
as a generated, committed tfvars file:
    python -m infra.tfvars           # rewrite it
    python -m infra.tfvars --check   # exit 1 if it is out of date (tests/infra runs this check)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infra import cors, manifest

TFVARS = manifest.ROOT / "infra" / "terraform" / "functions.auto.tfvars.json"


def render(m: manifest.Manifest) -> str:
    functions = {
        f.name: {
            "entry_point": f.entry_point,
            "trigger": f.trigger,
            "topic": f.topic,
            "object_prefix": f.object_prefix,
            "dead_letter_topic": f.dead_letter_topic,
            "max_delivery_attempts": f.max_delivery_attempts,
            "timeout_seconds": f.timeout_seconds,
            "memory": f.memory,
            "max_instances": f.max_instances,
            "pool_size": f.pool_size,
            "pool_timeout_seconds": f.pool_timeout_seconds,
            "retry": f.retry,
            "publishes": list(f.publishes),
            "secrets": list(f.secrets),
            "signs_urls": f.signs_urls,
            "concurrency": f.concurrency,
            "cpu": f.cpu,
            "bucket_role": f.bucket_role,
            "vpc": f.vpc,
        }
        for f in m.functions
    }
    schedules = {
        s.name: {"cron": s.cron, "body": s.body, "topic": f.topic}
        for f in m.functions
        for s in f.schedules
    }
    document = {
        "apis": list(m.apis),
        "dead_letter_hold": {
            "message_retention_seconds": m.dead_letter_hold.message_retention_seconds,
            "ack_deadline_seconds": m.dead_letter_hold.ack_deadline_seconds,
        },
        "model_limits": {
            "concurrent_images": m.model_limits.concurrent_images,
            "images_per_minute": m.model_limits.images_per_minute,
        },
        "functions": functions,
        "topics": m.topics,
        "schedules": schedules,
        "bucket_cors": cors.terraform_rule(),
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    parser.add_argument("--out", type=Path, default=TFVARS)
    args = parser.parse_args(argv)
    text = render(manifest.load())
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"{args.out} is out of date: run python -m infra.tfvars", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
