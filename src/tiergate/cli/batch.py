"""``tiergate batch ROUTE --in FILE.jsonl --out FILE.jsonl``: a whole file through a route.

Live mode keeps every Claude model at its rate limits; batches mode sends each Claude tier's
share through the Message Batches API at half price. Killed at any moment, the same command run
again continues where it stopped (see docs/bulk.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate.cli.access_args import add_access_arguments
from tiergate.cli.errors import CliError, positive
from tiergate.cli.formatting import percent, say, usd
from tiergate.cli.progress import add_progress_argument, progress_for
from tiergate.cli.tables import render_table

if TYPE_CHECKING:
    from tiergate.bulk.run import BulkResult


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "batch", help="route a JSONL file, live or through the Message Batches API; resumable"
    )
    parser.add_argument("route", type=Path, help="route file (or its folder)")
    parser.add_argument(
        "--in", dest="source", type=Path, required=True, help="JSONL rows: id, text, label"
    )
    parser.add_argument("--out", type=Path, required=True, help="JSONL results, in input order")
    parser.add_argument(
        "--errors", type=Path, help="rows that failed, with line and reason (default OUT.errors)"
    )
    parser.add_argument(
        "--mode", choices=("live", "batches"), default="live", help="default %(default)s"
    )
    limits = parser.add_argument_group("live mode: limits per Claude model")
    limits.add_argument("--rpm", type=_count, help="requests per minute")
    limits.add_argument("--itpm", type=_count, help="input tokens per minute (uncached)")
    limits.add_argument("--otpm", type=_count, help="output tokens per minute")
    limits.add_argument(
        "--concurrency", type=_count, default=64, help="calls in flight (default %(default)s)"
    )
    batches = parser.add_argument_group("batches mode")
    batches.add_argument(
        "--batch-size", type=_count, default=2000, help="requests per batch (default %(default)s)"
    )
    batches.add_argument(
        "--segment-rows",
        type=_count,
        default=20000,
        help="rows held while their batches run (default %(default)s)",
    )
    batches.add_argument(
        "--poll-max", type=positive, default=60.0, help="longest wait between polls, seconds"
    )
    batches.add_argument(
        "--poll-first", type=positive, default=1.0, help="first wait between polls, seconds"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_progress_argument(parser)
    parser.add_argument("--prices", type=Path, help="price book file merged over the built-in one")
    add_access_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tiergate.bulk.state import StateMismatchError

    if not args.source.is_file():
        raise CliError(f"--in {args.source}: no such file")
    if args.out.resolve() == args.source.resolve():
        raise CliError("--out must not be the input file")
    try:
        result = asyncio.run(_run(args))
    except StateMismatchError as error:
        raise CliError(str(error)) from None
    if args.json:
        print(json.dumps(result.summary, indent=2))
    else:
        print(render(result.summary))
    return 0


async def _run(args: argparse.Namespace) -> BulkResult:
    from tiergate.bulk.batches import BatchSettings
    from tiergate.bulk.rows import Row, read_rows
    from tiergate.bulk.run import BulkOptions, run_bulk
    from tiergate.cli.claude_access import claude_access
    from tiergate.core.prices import load_price_book
    from tiergate.datasets import Example
    from tiergate.limits import RateLimits
    from tiergate.routing.route import load_route
    from tiergate.routing.runtime import route_data

    route = load_route(args.route)
    book = load_price_book(args.prices)
    options = BulkOptions(
        route=route,
        source=args.source,
        output=args.out,
        errors=args.errors or args.out.with_name(args.out.name + ".errors"),
        mode=args.mode,
        limits=RateLimits(args.rpm, args.itpm, args.otpm),
        concurrency=args.concurrency,
        batches=BatchSettings(
            batch_size=args.batch_size,
            segment_rows=args.segment_rows,
            poll_first_s=args.poll_first,
            poll_max_s=args.poll_max,
        ),
    )
    if not route.claude_tiers:
        with progress_for(args) as tracker:
            return await run_bulk(replace(options, tracker=tracker), book, None)
    data = route_data(route)

    def known() -> list[Example]:
        # Only for the emulator: the input's labelled rows, so it knows their true labels.
        rows = (row for row in read_rows(args.source) if isinstance(row, Row) and row.label)
        return (
            data.train
            + data.calibration
            + [Example(row.text, row.label or "", request=row.request) for row in rows]
        )

    async with claude_access(args, route, known) as access:
        say(access.banner())
        with progress_for(args) as tracker:
            return await run_bulk(replace(options, tracker=tracker), book, access.transport)


def render(summary: dict[str, Any]) -> str:
    """The summary as text: the run, a table per tier, cost against one model alone."""
    rate = summary["rows_per_s"]
    rows = [
        [
            name,
            f"{tier['accepted']:,}",
            percent(tier["share"]),
            percent(tier["accuracy"]),
            f"{tier['calls']:,}",
            usd(tier["cost_usd"]),
        ]
        for name, tier in summary["tiers"].items()
    ]
    share = summary["not_accepted"] / summary["rows"] if summary["rows"] else None
    rows.append(["not accepted", f"{summary['not_accepted']:,}", percent(share), "", "", ""])
    lines = [
        f"{summary['route']} ({summary['mode']} mode): {summary['rows']:,} rows answered, "
        f"{summary['errors']:,} in the errors file",
        f"this run: {summary['rows_this_run']:,} rows in {summary['seconds']:.1f} s "
        f"({'-' if rate is None else f'{rate:,.1f}'} rows/s), "
        f"{summary['upstream_calls_this_run']:,} upstream calls",
        "",
        render_table(
            ["tier", "accepted", "share", "accuracy", "calls", "cost"],
            rows,
            numeric=[False, True, True, True, True, True],
        ),
        "",
        f"escalation rate {percent(summary['escalation_rate'])}; accuracy of all answers "
        f"{percent(summary['accuracy'])}",
        f"cost {usd(summary['cost_usd'])}",
    ]
    if summary["mode"] == "batches":
        lines.append(
            f"  the same answers live: {usd(summary['live_cost_usd'])} (the batch discount "
            f"saves {usd(summary['batch_saving_usd'])})"
        )
    for name, alone in summary["only"].items():
        lines.append(
            f"  {name}-only: {usd(alone['cost_usd'])} (tiered saves {percent(alone['saving'])})"
        )
    return "\n".join(lines)
