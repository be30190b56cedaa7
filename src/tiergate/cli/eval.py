"""``tiergate eval ROUTE --data FILE``: route labelled tickets and score the whole ladder."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from tiergate.cli.claude_access import add_access_arguments, claude_access, estimate_calls_usd, say
from tiergate.cli.errors import CliError
from tiergate.cli.formatting import percent
from tiergate.core.prices import load_price_book
from tiergate.datasets import load_dataset
from tiergate.routing.evaluate import Baselines, per_call_costs, summarize
from tiergate.routing.route import load_route
from tiergate.routing.runtime import check_labels, claude_tiers, open_router, route_data
from tiergate.tiers.base import Ticket

BASELINE_SAMPLE = 30
CHUNK = 500


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
    full = load_route(args.route)
    route = full.restricted(args.tiers.split(",")) if args.tiers else full
    book = load_price_book(args.prices)
    path = args.data or route.test_data
    if path is None:
        raise CliError(f"{route.path} has no data.test: pass --data FILE")
    examples = load_dataset(path)
    check_labels(route, examples, str(path))
    if args.limit is not None:
        examples = examples[: args.limit]
    texts = [example.text for example in examples]
    data = route_data(full)
    async with claude_access(args, full, data.train + data.calibration + examples) as access:
        router = open_router(
            route, book, access.client if route.claude_tiers else None, concurrency=args.concurrency
        )
        if route.claude_tiers:
            say(access.banner())
            if access.real:
                worst = estimate_calls_usd(
                    router.tiers, texts, {name: len(texts) for name in router.tiers}
                )
                say(f"at most about ${worst:.2f} if every ticket climbed every Claude tier")
        decisions = []
        for start in range(0, len(texts), CHUNK):
            decisions += await router.classify_many(texts[start : start + CHUNK])
            say(f"  {len(decisions):,}/{len(texts):,} routed")
        baselines = await _baselines(full, book, access.client, router, decisions, texts)
    result = summarize(route, decisions, [example.label for example in examples], baselines)
    result["data"] = str(path)
    result["emulated"] = access.kind == "emulated" and bool(full.claude_tiers)
    return result


async def _baselines(
    full: Any, book: Any, client: Any, router: Any, decisions: list[Any], texts: list[str]
) -> Baselines:
    """Per-call cost of the cheap and strong models: observed in the run, else on a small sample."""
    observed = per_call_costs(decisions)
    claude = full.claude_tiers
    if not claude:
        return Baselines(None, None, None, None)
    cheap, strong = claude[0], claude[-1]
    missing = [name for name in {cheap, strong} if name not in observed]
    if missing:
        views = (
            router.local.view(texts[:BASELINE_SAMPLE])
            if router.local is not None
            else [None] * BASELINE_SAMPLE
        )
        tiers = claude_tiers(
            full, book, client, router.local.model.examples if router.local else []
        )
        for name in missing:
            answers = await asyncio.gather(
                *(
                    tiers[name].answer(Ticket(text, view))
                    for text, view in zip(texts[:BASELINE_SAMPLE], views, strict=False)
                )
            )
            costs = [answer.cost_usd for answer in answers if answer.cost_usd > 0]
            if costs:
                observed[name] = sum(costs) / len(costs)
    return Baselines(cheap, observed.get(cheap), strong, observed.get(strong))


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4f}"


def render(result: dict[str, Any]) -> str:
    lines = [
        f"{result['route']}: {result['tickets']:,} tickets from {result['data']}, ladder "
        f"{' -> '.join(result['ladder'])}, error budget {result['error_budget']:.1%}",
        "",
        f"{'tier':<20} {'accepted':>9} {'share':>7} {'accuracy':>9} {'cost':>11}",
    ]
    for name, tier in result["tiers"].items():
        lines.append(
            f"{name:<20} {tier['accepted']:>9,} {tier['accepted_share']:>7.1%} "
            f"{percent(tier['accepted_accuracy']):>9} {_usd(tier['cost_usd']):>11}"
        )
    unaccepted = result["flagged"] + result["handed_to_human"]
    lines.append(
        f"{'not accepted':<20} {unaccepted:>9,} {result['unaccepted_share']:>7.1%}   "
        f"({result['flagged']:,} flagged, {result['handed_to_human']:,} to a human)"
    )
    lines += [
        "",
        f"accuracy of all final answers: {percent(result['accuracy'])}; of accepted answers: "
        f"{percent(result['accepted_accuracy'])} ({percent(result['accepted_share'])} accepted)",
        f"escalation rate: {percent(result['escalation_rate'])}; latency p50 "
        f"{result['latency_p50_s'] * 1000:.1f} ms, p95 {result['latency_p95_s'] * 1000:.1f} ms",
        f"cost: {_usd(result['cost_usd'])} ({_usd(result['cost_per_1000_usd'])} per 1,000 tickets)",
    ]
    if result.get("strong_only_cost_usd") is not None:
        lines.append(
            f"  {result['strong_only_model']}-only: {_usd(result['strong_only_cost_usd'])} "
            f"(tiered saves {percent(result['savings_vs_strong'])})"
        )
    if result.get("cheap_only_cost_usd") is not None:
        lines.append(
            f"  {result['cheap_only_model']}-only: {_usd(result['cheap_only_cost_usd'])} "
            f"(tiered saves {percent(result['savings_vs_cheap'])})"
        )
    scope = result.get("out_of_scope")
    if scope:
        lines.append(
            f"in scope: {percent(scope['in_scope_accepted_share'])} of "
            f"{scope['in_scope_tickets']:,} accepted at "
            f"{percent(scope['in_scope_accepted_accuracy'])}; "
            f"out of scope ({scope['label']}): {percent(scope['wrongly_accepted_share'])} of "
            f"{scope['out_of_scope_tickets']:,} wrongly accepted with an in-scope label"
        )
    if result.get("emulated"):
        lines.append(
            "Claude answers were EMULATED: their accuracy is the emulator's assumption, "
            "not Claude's."
        )
    return "\n".join(lines)
