"""``tiergate eval ROUTE --data FILE``: route labelled tickets and score the whole ladder."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from tiergate.cli.access_args import add_access_arguments
from tiergate.cli.errors import CliError
from tiergate.cli.formatting import percent, say, usd
from tiergate.cli.progress import add_progress_argument, progress_for
from tiergate.cli.tables import render_table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("eval", help="route labelled tickets and score the ladder")
    parser.add_argument("route", type=Path, help="route file (or its folder)")
    parser.add_argument("--data", type=Path, help="labelled data (default: the route's test data)")
    parser.add_argument("--tiers", help="comma-separated subset of the ladder, e.g. local")
    parser.add_argument("--limit", type=int, help="use at most N tickets")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="Claude calls in flight (default %(default)s)"
    )
    parser.add_argument("--prices", type=Path, help="price book file merged over the built-in one")
    add_access_arguments(parser)
    add_progress_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1")
    result = asyncio.run(evaluate(args))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result))
    return 0


async def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from tiergate.cli.claude_access import claude_access, estimate_calls_usd
    from tiergate.core.prices import load_price_book
    from tiergate.datasets import Example
    from tiergate.routing.evaluate import EvaluateOptions, evaluate_route
    from tiergate.routing.route import load_route
    from tiergate.routing.runtime import check_tiers, paid_tiers, read_examples, route_data

    full = load_route(args.route)
    tiers = args.tiers.split(",") if args.tiers else None
    route = full.restricted(tiers) if tiers else full
    book = load_price_book(args.prices)
    check_tiers(route, book)  # before any emulator starts
    options = EvaluateOptions(args.data, tiers, args.limit, args.concurrency)
    if not route.claude_tiers:
        with progress_for(args) as tracker:
            result = await evaluate_route(full, book, None, options, say=say, tracker=tracker)
        result["emulated"] = False
        return result
    path = args.data or route.test_data
    if path is None:
        raise CliError(f"{route.path} has no data.test: pass --data FILE")

    def known() -> list[Example]:
        data = route_data(full)
        return data.train + data.calibration + read_examples(full, path)

    async with claude_access(args, full, known) as access:
        say(access.banner())
        if access.real:
            texts = [e.text for e in read_examples(full, path)][: args.limit]
            calls = paid_tiers(route, book, access.transport, pool=route_data(full).train)
            worst = estimate_calls_usd(calls, texts, {name: len(texts) for name in calls})
            say(f"at most about ${worst:.2f} if every ticket climbed every Claude tier")
        with progress_for(args) as tracker:
            result = await evaluate_route(
                full, book, access.transport, options, say=say, tracker=tracker
            )
    result["emulated"] = access.kind == "emulated"
    return result


def _against(result: dict[str, Any], kind: str) -> list[str]:
    """One model answering everything: the saving, or in words why a negative one is no loss."""
    model, cost = result.get(f"{kind}_only_model"), result.get(f"{kind}_only_cost_usd")
    saving = result.get(f"savings_vs_{kind}")
    if model is None or cost is None or saving is None:
        return []
    accuracy = result.get(f"{kind}_only_accuracy_on_calibration")
    meets = result.get(f"{kind}_only_meets_budget")
    line = f"  {model}-only: {usd(cost)}: "
    if saving >= 0:
        line += f"tiered saves {percent(saving)}"
    elif meets is False:
        line += (
            f"{1 / (1 - saving):.1%} of the tiered cost, but {model} answering everything was "
            f"{percent(accuracy)} accurate at calibration: it does not meet a "
            f"{result['error_budget']:.1%} budget"
        )
    else:
        line += f"tiered costs {-saving:.1%} more"
    if saving >= 0 and meets is False:
        line += f" ({model} alone was {percent(accuracy)} accurate at calibration)"
    return [line]


def render(result: dict[str, Any]) -> str:
    unaccepted = result["flagged"] + result["handed_to_human"]
    rows = [
        [
            name,
            f"{tier['accepted']:,}",
            f"{tier['accepted_share']:.1%}",
            percent(tier["accepted_accuracy"]),
            usd(tier["cost_usd"]),
        ]
        for name, tier in result["tiers"].items()
    ]
    counts = (("flagged", result["flagged"]), ("to a human", result["handed_to_human"]))
    kinds = [(name, count) for name, count in counts if count]
    # One kind names the row ("not accepted (flagged)"); both get a row each beneath it.
    label = f"not accepted ({kinds[0][0]})" if len(kinds) == 1 else "not accepted"
    rows.append([label, f"{unaccepted:,}", f"{result['unaccepted_share']:.1%}", "", ""])
    if len(kinds) > 1:
        for name, count in kinds:
            rows.append([f"  {name}", f"{count:,}", f"{count / result['tickets']:.1%}", "", ""])
    lines = [
        f"{result['route']}: {result['tickets']:,} tickets from {result['data']}, ladder "
        f"{' -> '.join(result['ladder'])}, error budget {result['error_budget']:.1%}",
        "",
        render_table(
            ["tier", "accepted", "share", "accuracy", "cost"],
            rows,
            numeric=[False, True, True, True, True],
        ),
        "",
        f"accuracy of all final answers: {percent(result['accuracy'])}; of accepted answers: "
        f"{percent(result['accepted_accuracy'])} ({percent(result['accepted_share'])} accepted)",
        f"escalation rate: {percent(result['escalation_rate'])}; latency p50 "
        f"{result['latency_p50_s'] * 1000:.1f} ms, p95 {result['latency_p95_s'] * 1000:.1f} ms",
        f"cost: {usd(result['cost_usd'])} ({usd(result['cost_per_1000_usd'])} per 1,000 tickets)",
    ]
    for kind in ("strong", "cheap"):
        lines += _against(result, kind)
    scope = result.get("out_of_scope")
    if scope:
        lines.append(
            f"in scope: {percent(scope['in_scope_accepted_share'])} of "
            f"{scope['in_scope_tickets']:,} accepted at "
            f"{percent(scope['in_scope_accepted_accuracy'])}; "
            f"out of scope ({scope['label']}): {percent(scope['wrongly_accepted_share'])} of "
            f"{scope['out_of_scope_tickets']:,} wrongly accepted with an in-scope label"
        )
    fields = {k: v for k, v in (result.get("field_accuracy") or {}).items() if v is not None}
    if fields:
        worst = sorted(fields, key=lambda name: (fields[name], name))[:3]
        mean = sum(fields.values()) / len(fields)
        lines.append(
            f"fields (all final answers): {len(fields)}, mean {percent(mean)}; lowest "
            + ", ".join(f"{name} {percent(fields[name])}" for name in worst)
        )
    categories = result.get("categories")
    if categories:
        lines += [
            "",
            render_table(
                ["category", "items", "accuracy", "accepted", "acc. acc."],
                [
                    [
                        name,
                        f"{row['items']:,}",
                        percent(row["accuracy"]),
                        percent(row["accepted_share"]),
                        percent(row["accepted_accuracy"]),
                    ]
                    for name, row in categories.items()
                ],
                numeric=[False, True, True, True, True],
            ),
        ]
    if result.get("emulated"):
        lines.append(
            "Claude answers were EMULATED: their accuracy is the emulator's assumption, "
            "not Claude's."
        )
    return "\n".join(lines)
