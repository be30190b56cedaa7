"""Entry point: builds the parser from the command modules and maps errors to exit codes."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import cast

from tiergate.cli.errors import CliError, OneLineParser, fail
from tiergate.errors import TiergateError

# Each module has register(subparsers) and sets `handler` on its parser. Imported only for the
# command being run, so `tiergate cost` never imports the emulator, torch or the gateway, and a
# usage error costs no import at all. The help line shows in `tiergate --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "cost": ("tiergate.cli.cost", "price a workload: cheap-only, strong-only and tiered"),
    "demo": ("tiergate.cli.demo", "run the offline demo (no API key needed)"),
    "emulate": ("tiergate.cli.emulate", "serve the Claude API emulator on loopback"),
    "train": ("tiergate.cli.train", "train a route's local model"),
    "calibrate": ("tiergate.cli.calibrate", "fit confidence thresholds to the error budget"),
    "eval": ("tiergate.cli.eval", "route labelled tickets and score the ladder"),
    "route": ("tiergate.cli.route_one", "route one ticket and show the trace"),
    "learn": ("tiergate.cli.learn", "replay tickets in order and learn from escalations"),
    "serve": ("tiergate.cli.serve", "run the Anthropic-compatible gateway"),
    "keys": ("tiergate.cli.keys", "create, list and revoke gateway keys"),
    "batch": ("tiergate.cli.batch", "route a JSONL file, live or through Message Batches"),
    "router": ("tiergate.cli.router", "train and evaluate a learned pre-call router"),
    "audit": ("tiergate.cli.audit", "live error of a gateway route's answers, from its audits"),
}

Handler = Callable[[argparse.Namespace], int]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="tiergate",
        description="Answer each Claude request with the cheapest tier that is good enough.",
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=OneLineParser
    )
    for name, (module_name, help_text) in COMMANDS.items():
        if name != only:
            subparsers.add_parser(name, help=help_text)
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in args_list if not arg.startswith("-")), None)
    only = command if command in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(args_list)
    handler = cast(Handler | None, getattr(args, "handler", None))
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except CliError as error:
        fail(f"tiergate {args.command}", str(error), error.status)
    except TiergateError as error:
        fail(f"tiergate {args.command}", str(error))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
