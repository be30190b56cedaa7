"""``tiergate route ROUTE "text"``: one ticket, its answer and the trace of how it got there."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate.cli.access_args import add_access_arguments
from tiergate.cli.formatting import say
from tiergate.cli.tables import render_table
from tiergate.tasks.base import Item

if TYPE_CHECKING:
    from tiergate.routing.engine import Decision
    from tiergate.tasks.base import Task


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
    decision, task = asyncio.run(_route(args))
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2))
    else:
        print(render(decision, task))
    return 0


async def _route(args: argparse.Namespace) -> tuple[Decision, Task]:
    from tiergate.cli.claude_access import claude_access
    from tiergate.core.prices import load_price_book
    from tiergate.routing.route import load_route
    from tiergate.routing.runtime import open_router, route_data

    route = load_route(args.route)
    book = load_price_book(args.prices)
    item = _item(args.text)
    if not route.claude_tiers:
        return await open_router(route, book, None).decide(item), route.task
    data = route_data(route)
    known = data.train + data.calibration
    if item.request is not None and args.text.lstrip().startswith("{"):
        row = json.loads(args.text)
        if isinstance(row, dict) and row.get("label") is not None:  # a labelled data row
            known.append(route.task.example(row, "the request"))
    async with claude_access(args, route, known) as access:
        say(access.banner())
        router = open_router(route, book, access.transport)
        return await router.decide(item), route.task


def _item(text: str) -> Item:
    """The text, or for tasks that need the whole request (tool decisions) a JSON object: a
    Messages request (``messages``, ``tools``), or a data row with ``text`` and ``request``."""
    if not text.lstrip().startswith("{"):
        return Item(text)
    from tiergate.cli.errors import CliError
    from tiergate.tasks.tool import last_user_text

    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(f"the request is not valid JSON: {error}") from None
    request = body.get("request", body)
    if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
        raise CliError("a JSON request needs `messages` (and `tools` for a tool decision)")
    return Item(str(body.get("text") or last_user_text(request)), body.get("id"), request)


def render(decision: Decision, task: Task) -> str:
    answer = task.describe(decision.payload)
    if decision.accepted:
        head = f"{answer}  (answered by {decision.tier}, P(correct) {decision.confidence:.3f})"
    elif decision.handed_to_human:
        head = "handed to a human: no tier was confident enough"
    else:
        head = f"{answer}  (FLAGGED: {decision.tier} answered but below its threshold)"
    rows = []
    for step in decision.trace:
        if step.problem:
            rows.append([step.tier, f"unusable: {step.problem}", "-", "-", "-", "escalated"])
        else:
            rows.append(
                [
                    step.tier,
                    task.describe(step.payload),
                    "-" if step.confidence is None else f"{step.confidence:.3f}",
                    "-" if step.threshold is None else f"{step.threshold:.3f}",
                    "-" if step.stated_confidence is None else f"{step.stated_confidence:.2f}",
                    "accepted" if step.accepted else "escalated",
                ]
            )
        rows[-1].append(f"${step.cost_usd:.6f}")
    return "\n".join(
        [
            head,
            f"cost ${decision.cost_usd:.6f}, {decision.latency_s * 1000:.0f} ms",
            "trace:",
            render_table(
                ["tier", "answer", "P(correct)", "threshold", "stated", "verdict", "cost"],
                rows,
                numeric=[False, False, True, True, True, False, True],
                indent=2,
            ),
        ]
    )
