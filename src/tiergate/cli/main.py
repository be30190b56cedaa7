"""Entry point: builds the parser from the command modules and maps errors to exit codes."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import cast

from tiergate.cli.errors import CliError, OneLineParser, fail
from tiergate.errors import TiergateError

# Each module has register(subparsers) and sets `handler` on its parser. Imported lazily
# per command name so that `tiergate cost` never imports the emulator, torch or the gateway.
COMMANDS: dict[str, str] = {
    "cost": "tiergate.cli.cost",
    "demo": "tiergate.cli.demo",
    "emulate": "tiergate.cli.emulate",
    "train": "tiergate.cli.train",
    "calibrate": "tiergate.cli.calibrate",
    "eval": "tiergate.cli.eval",
    "route": "tiergate.cli.route_one",
    "learn": "tiergate.cli.learn",
    "serve": "tiergate.cli.serve",
    "keys": "tiergate.cli.keys",
    "batch": "tiergate.cli.batch",
    "router": "tiergate.cli.router",
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
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            subparsers.add_parser(name, help=f"(run `tiergate {name} --help`)")
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
