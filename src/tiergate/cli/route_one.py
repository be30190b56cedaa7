"""``tiergate route ROUTE "text"``: one ticket, its answer and the trace of how it got there."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate.cli.access_args import add_access_arguments
from tiergate.cli.formatting import say

if TYPE_CHECKING:
    from tiergate.routing.engine import Decision


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("route", help="route one ticket and show the trace")
    parser.add_argument("route", type=Path, help="route file (or its folder)")
    parser.add_argument("text", help="the ticket text")
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    parser.add_argument("--prices", type=Path, help="price book file merged over the built-in one")
    add_access_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.text.strip():
        from tiergate.cli.errors import CliError

        raise CliError("the ticket text is empty")
    decision = asyncio.run(_route(args))
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2))
    else:
        print(render(decision))
    return 0


async def _route(args: argparse.Namespace) -> Decision:
    from tiergate.cli.claude_access import claude_access
    from tiergate.core.prices import load_price_book
    from tiergate.routing.route import load_route
    from tiergate.routing.runtime import open_router, route_data

    route = load_route(args.route)
    book = load_price_book(args.prices)
    data = route_data(route)
    async with claude_access(args, route, data.train + data.calibration) as access:
        if route.claude_tiers:
            say(access.banner())
        router = open_router(route, book, access.client if route.claude_tiers else None)
        return await router.classify(args.text)


def render(decision: Decision) -> str:
    if decision.accepted:
        head = (
            f"{decision.label}  (answered by {decision.tier}, P(correct) {decision.confidence:.3f})"
        )
    elif decision.handed_to_human:
        head = "handed to a human: no tier was confident enough"
    else:
        head = f"{decision.label}  (FLAGGED: {decision.tier} answered but below its threshold)"
    lines = [head, f"cost ${decision.cost_usd:.6f}, {decision.latency_s * 1000:.0f} ms", "trace:"]
    for step in decision.trace:
        if step.problem:
            lines.append(f"  {step.tier:<20} unusable: {step.problem}")
            continue
        verdict = "accepted" if step.accepted else "escalated"
        stated = (
            f", stated {step.stated_confidence:.2f}" if step.stated_confidence is not None else ""
        )
        lines.append(
            f"  {step.tier:<20} {step.label:<32} P(correct) {step.confidence:.3f} vs threshold "
            f"{step.threshold:.3f}{stated}: {verdict} (${step.cost_usd:.6f})"
        )
    return "\n".join(lines)
