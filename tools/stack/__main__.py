"""The local cloud stack: `python -m tools.stack {up,down,status,logs,token,env}`."""

from __future__ import annotations

import argparse
import sys

from infra import manifest
from tools.stack import control
from tools.stack.config import StackConfig
from tools.stack.up import up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start what is not running; wait until everything answers")
    stop = commands.add_parser("down", help="stop what up started")
    stop.add_argument("--only", help="comma-separated service names")
    state = commands.add_parser("status", help="each service: port, pid, up/down")
    state.add_argument("--json", action="store_true")
    logs = commands.add_parser("logs", help="the last lines of each log, or of one service")
    logs.add_argument("service", nargs="?")
    logs.add_argument("-n", "--lines", type=int, default=30)
    logs.add_argument("-f", "--follow", action="store_true")
    token = commands.add_parser("token", help="print a bearer token for a user")
    token.add_argument("user")
    commands.add_parser("env", help="print .local/stack.env")
    args = parser.parse_args(argv)

    spec = manifest.load()
    config = StackConfig.from_env(spec)
    if args.command == "up":
        return up(config, spec)
    if args.command == "down":
        only = {n.strip() for n in args.only.split(",")} if args.only else None
        return control.down(config, spec, only)
    if args.command == "status":
        return control.status(config, spec, args.json)
    if args.command == "logs":
        return control.logs(config, args.service, args.lines, args.follow)
    if args.command == "token":
        return control.token(config, args.user)
    return control.env(config)


if __name__ == "__main__":
    sys.exit(main())
