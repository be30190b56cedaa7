"""``tiergate calibrate ROUTE``: fit each tier's calibrator and thresholds to the error budget."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from tiergate.cli.claude_access import add_access_arguments, claude_access, estimate_calls_usd, say
from tiergate.cli.errors import CliError
from tiergate.cli.formatting import percent
from tiergate.core.prices import load_price_book
from tiergate.datasets import Example, load_dataset
from tiergate.plots.budgets import BudgetPoint, plot_budgets
from tiergate.routing.evaluate import Baselines, summarize
from tiergate.routing.fitting import collect, fit_policies, replay, silver_labels, threshold_rows
from tiergate.routing.route import Route, load_route
from tiergate.routing.runtime import (
    check_labels,
    claude_tiers,
    load_local,
    route_data,
    save_policies,
    save_runs,
)
from tiergate.tiers.base import TierAnswer

BUDGETS = (0.005, 0.01, 0.02, 0.05, 0.1)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="fit confidence thresholds to the error budget"
    )
    parser.add_argument("route", type=Path, help="route file (or its folder)")
    parser.add_argument(
        "--data", type=Path, help="labelled calibration data (default: the route's held-out data)"
    )
    parser.add_argument("--limit", type=int, help="use at most N calibration tickets")
    parser.add_argument(
        "--plot",
        type=Path,
        help="cost against accuracy across budgets (default ARTIFACTS/budgets.png)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--prices", type=Path, help="price book file merged over the built-in one")
    add_access_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 20:
        raise CliError("--limit must be at least 20: thresholds need data")
    report = asyncio.run(calibrate(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0


async def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    route = load_route(args.route)
    book = load_price_book(args.prices)
    data = route_data(route)
    examples = load_dataset(args.data, require_labels=False) if args.data else data.calibration
    check_labels(route, [e for e in examples if e.label], str(args.data or "calibration data"))
    if args.limit is not None:
        examples = examples[: args.limit]
    local = load_local(route)
    texts = [example.text for example in examples]
    async with claude_access(args, route, data.train + examples) as access:
        tiers = claude_tiers(route, book, access.client, local.model.examples)
        if route.claude_tiers:
            say(access.banner())
            if access.real:
                estimate = estimate_calls_usd(tiers, texts, {name: len(texts) for name in tiers})
                say(
                    f"calibration calls every Claude tier on {len(texts):,} tickets: "
                    f"about ${estimate:.2f}"
                )
        say(f"collecting answers of {', '.join(route.tiers)} on {len(texts):,} calibration tickets")
        runs = await collect(route, texts, tiers, local)
    silver = 0
    if any(not example.label for example in examples):
        examples, runs, silver = silver_labels(route, examples, runs)
        texts = [example.text for example in examples]
        say(
            f"{silver:,} calibration tickets had no label: {route.tiers[-1]}'s answers stand in "
            "for gold, so the budget bounds disagreement with it"
        )
    policies, fits = fit_policies(route, examples, runs)
    save_runs(route, examples, runs)
    rows = threshold_rows(route, len(examples))
    decisions = await replay(route, policies, runs, texts, rows)
    baselines = _baselines(route, runs)
    summary = summarize(route, decisions, [examples[i].label for i in rows], baselines)
    points = await _budget_sweep(route, examples, runs, texts, baselines)
    plot = plot_budgets(
        points,
        args.plot or route.artifacts / "budgets.png",
        title=f"{route.name}: cost against accuracy across error budgets\n(calibration data, "
        f"{' -> '.join(route.tiers)})",
        strong_only_per_1000_usd=_per_1000(baselines.strong_per_call_usd),
        cheap_only_per_1000_usd=_per_1000(baselines.cheap_per_call_usd),
    )
    tier_rows = [
        {
            "tier": fit.tier,
            "reached": fit.reached,
            "accepted": fit.accepted,
            "accepted_share": fit.accepted_share,
            "accepted_accuracy": None if fit.accepted == 0 else fit.accepted_accuracy,
            "accepted_accuracy_lower_bound": fit.lower_accuracy,
            "threshold": policies[fit.tier].thresholds.global_result.threshold,
            "labels_with_own_threshold": len(policies[fit.tier].thresholds.per_label),
            "usable_share": fit.usable_share,
            "mean_cost_per_call_usd": fit.mean_cost_usd,
        }
        for fit in fits
    ]
    saved = save_policies(
        route,
        policies,
        {
            "fitted_on": str(args.data or "held-out calibration data"),
            "tickets": len(examples),
            "tiers_report": tier_rows,
        },
    )
    return {
        "route": route.name,
        "emulated": access.kind == "emulated",
        "error_budget": route.error_budget,
        "confidence": route.confidence,
        "calibration_tickets": len(examples),
        "silver_labels": silver,
        "threshold_tickets": len(rows),
        "tiers": tier_rows,
        "expected": summary,
        "budgets": [asdict(point) for point in points],
        "saved": str(saved),
        "plot": str(plot),
    }


def _per_1000(per_call: float | None) -> float | None:
    return None if per_call is None else per_call * 1000


def _baselines(route: Route, runs: dict[str, list[TierAnswer]]) -> Baselines:
    claude = route.claude_tiers
    means = {
        name: sum(a.cost_usd for a in runs[name]) / len(runs[name]) for name in claude if runs[name]
    }
    cheap = claude[0] if claude else None
    strong = claude[-1] if claude else None
    return Baselines(cheap, means.get(cheap or ""), strong, means.get(strong or ""))


async def _budget_sweep(
    route: Route,
    examples: list[Example],
    runs: dict[str, list[TierAnswer]],
    texts: list[str],
    baselines: Baselines,
) -> list[BudgetPoint]:
    points = []
    rows = threshold_rows(route, len(examples))
    gold = [examples[i].label for i in rows]
    for budget in sorted({*BUDGETS, route.error_budget}):
        variant = replace(route, error_budget=budget)
        policies, _ = fit_policies(variant, examples, runs)
        decisions = await replay(variant, policies, runs, texts, rows)
        summary = summarize(variant, decisions, gold, baselines)
        points.append(
            BudgetPoint(
                budget,
                summary["accuracy"],
                summary["accepted_accuracy"],
                summary["cost_per_1000_usd"],
                summary["accepted_share"],
            )
        )
    return points


def render(report: dict[str, Any]) -> str:
    lines = [
        f"Calibrated {report['route']!r} for an error budget of {report['error_budget']:.1%} "
        f"(guarantee at {report['confidence']:.0%} confidence) on "
        f"{report['calibration_tickets']:,} "
        f"held-out tickets ({report['threshold_tickets']:,} chose the thresholds).",
        "",
        f"{'tier':<20} {'reached':>8} {'accepted':>9} {'share':>7} {'accuracy':>9} {'>= (95%)':>9} "
        f"{'threshold':>9} {'$/call':>10}",
    ]
    for row in report["tiers"]:
        lines.append(
            f"{row['tier']:<20} {row['reached']:>8,} {row['accepted']:>9,} "
            f"{row['accepted_share']:>7.1%} "
            f"{percent(row['accepted_accuracy']):>9} {row['accepted_accuracy_lower_bound']:>9.1%} "
            f"{row['threshold']:>9.3f} {row['mean_cost_per_call_usd']:>10.6f}"
        )
    expected = report["expected"]
    lines += [
        "",
        "Expected (in-sample, on the threshold half): "
        f"accuracy {percent(expected['accuracy'])}, accepted "
        f"{percent(expected['accepted_share'])} at {percent(expected['accepted_accuracy'])}, "
        f"${expected['cost_per_1000_usd']:.4f} per 1,000 tickets",
    ]
    if expected.get("strong_only_cost_usd"):
        lines.append(
            f"  against {expected['strong_only_model']}-only: "
            f"{percent(expected['savings_vs_strong'])} saved; "
            f"against {expected['cheap_only_model']}-only: "
            f"{percent(expected['savings_vs_cheap'])} saved"
        )
    lines += [
        "",
        "Across budgets:",
        f"  {'budget':>7} {'accepted':>9} {'acc. accuracy':>14} {'accuracy':>9} {'$/1k':>9}",
    ]
    for point in report["budgets"]:
        lines.append(
            f"  {point['budget']:>7.1%} {point['accepted_share']:>9.1%} "
            f"{percent(point['accepted_accuracy']):>14} "
            f"{point['accuracy']:>9.1%} {point['cost_per_1000_usd']:>9.4f}"
        )
    lines += ["", f"Saved {report['saved']}; plot {report['plot']}"]
    if report["emulated"]:
        lines.append(
            "Claude answers were EMULATED: their accuracy is the emulator's assumption, "
            "not Claude's."
        )
    return "\n".join(lines)
