"""``tiergate learn ROUTE``: replay tickets in order; escalated answers teach the local tier."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate.cli.access_args import add_access_arguments
from tiergate.cli.errors import CliError
from tiergate.cli.formatting import percent, say
from tiergate.cli.tables import render_table

if TYPE_CHECKING:
    from tiergate.routing.learning import ChunkResult


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "learn", help="replay tickets in order and learn from escalations"
    )
    parser.add_argument("route", type=Path, help="route file (or its folder)")
    parser.add_argument(
        "--data", type=Path, help="tickets in arrival order (default: the route's test data)"
    )
    parser.add_argument(
        "--chunk", type=int, default=500, help="tickets between retrains (default %(default)s)"
    )
    parser.add_argument("--limit", type=int, help="use at most N tickets")
    parser.add_argument(
        "--plot",
        type=Path,
        help="share per tier and cost over time (default ARTIFACTS/learning.png)",
    )
    parser.add_argument(
        "--save", action="store_true", help="keep the learned local model in the route's artifacts"
    )
    parser.add_argument("--json", action="store_true", help="print the chunks as JSON")
    parser.add_argument("--prices", type=Path, help="price book file merged over the built-in one")
    add_access_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.chunk < 10:
        raise CliError("--chunk must be at least 10")
    results, plot = asyncio.run(_learn(args))
    if args.json:
        print(json.dumps([asdict(result) for result in results], indent=2))
    else:
        print(render(results))
        print(f"\nplot: {plot}")
    return 0


async def _learn(args: argparse.Namespace) -> tuple[list[ChunkResult], Path]:
    from tiergate.cli.claude_access import claude_access
    from tiergate.core.prices import load_price_book
    from tiergate.plots.learning import plot_learning
    from tiergate.routing.learning import learn
    from tiergate.routing.route import LOCAL, load_route
    from tiergate.routing.runtime import (
        labelled_examples,
        load_runs,
        local_dir,
        open_router,
        route_data,
    )

    route = load_route(args.route)
    if LOCAL not in route.tiers:
        raise CliError(f"{route.path}: learning teaches the local tier, and this ladder has none")
    book = load_price_book(args.prices)
    _, stream = labelled_examples(route, args.data, args.limit)
    data = route_data(route)
    runs = load_runs(route)
    calibration, recorded = runs.examples, dict(runs.runs)
    recorded.pop("local", None)
    async with claude_access(args, route, data.train + data.calibration + stream) as access:
        say(access.banner())
        router = open_router(route, book, access.transport)
        results = await learn(
            router,
            stream,
            calibration,
            recorded,
            chunk=args.chunk,
            progress=lambda r: say(
                f"  chunk {r.index + 1}: local {r.shares.get('local', 0):.1%}, "
                f"${r.cost_per_1000_usd:.4f}/1k, learned {r.learned}"
            ),
        )
    if args.save and router.local is not None:
        router.local.model.save(local_dir(route))  # type: ignore[attr-defined]
        say(f"saved the learned local model to {local_dir(route)}; run `tiergate calibrate` again")
    plot = plot_learning(
        results,
        route.tiers,
        args.plot or route.artifacts / "learning.png",
        title=f"{route.name}: escalated answers teach the local tier (chunks of {args.chunk})",
    )
    return results, plot


def render(results: list[ChunkResult]) -> str:
    tiers = list(results[0].shares) if results else []
    headers = ["chunk", "tickets", *tiers, "unaccepted", "accuracy", "$/1k", "learned", "pool"]
    rows = [
        [
            f"{r.index + 1}",
            f"{r.tickets:,}",
            *(f"{r.shares[t]:.1%}" for t in tiers),
            f"{r.unaccepted_share:.1%}",
            percent(r.accuracy),
            f"{r.cost_per_1000_usd:.4f}",
            f"{r.learned:,}",
            f"{r.pool:,}",
        ]
        for r in results
    ]
    return render_table(headers, rows, numeric=[True] * len(headers))
