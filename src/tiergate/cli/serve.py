"""``tiergate serve --config FILE``: the Anthropic-compatible gateway."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tiergate.cli.errors import CliError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the gateway: an Anthropic Messages API server that tiers requests"
    )
    parser.add_argument("--config", type=Path, required=True, help="gateway YAML file")
    parser.add_argument("--host", default="127.0.0.1", help="address (default %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port (default %(default)s)")
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tiergate.gateway import ConfigError, load_config, serve_forever

    try:
        config = load_config(args.config)
    except ConfigError as error:
        raise CliError(str(error)) from None
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be 0-65535, got {args.port}")
    serve_forever(config, args.host, args.port, args.log_level)
    return 0
