"""``tiergate cost``: when does Haiku beat Sonnet, and what does tiering save?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from tiergate.cli.errors import CliError, non_negative, share
from tiergate.cli.tables import render_table
from tiergate.core.calculator import Comparison, Levers, Workload, compare
from tiergate.core.prices import PriceBook, load_price_book
from tiergate.core.target import TargetReport, what_it_takes


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cost",
        help="price a workload: cheap-only, strong-only and tiered",
        description="Price a workload on a cheap tier, a strong tier and a tiered ladder.",
    )
    rate = parser.add_mutually_exclusive_group(required=True)
    rate.add_argument("--rpm", type=non_negative, help="requests per minute")
    rate.add_argument("--per-day", type=non_negative, help="requests per day")
    parser.add_argument(
        "--input-tokens", type=non_negative, required=True, help="average input tokens"
    )
    parser.add_argument(
        "--output-tokens", type=non_negative, required=True, help="average output tokens"
    )
    parser.add_argument(
        "--cheap", default="claude-haiku-4-5", help="cheap tier model (default %(default)s)"
    )
    parser.add_argument(
        "--strong", default="claude-sonnet-4-6", help="strong tier model (default %(default)s)"
    )
    parser.add_argument(
        "--escalation",
        type=share,
        default=0.2,
        help="share of requests answered by the strong tier (default %(default)s)",
    )
    parser.add_argument(
        "--mode",
        choices=("cascade", "preroute"),
        default="cascade",
        help="cascade: cheap first, escalated requests pay both; "
        "preroute: a router sends them straight to strong",
    )
    parser.add_argument(
        "--cached-input",
        type=share,
        default=0.0,
        help="share of input tokens read from the prompt cache",
    )
    parser.add_argument(
        "--batch",
        type=share,
        default=0.0,
        help="share of requests sent through the Message Batches API",
    )
    parser.add_argument(
        "--local", type=share, default=0.0, help="share answered by the free local tier"
    )
    parser.add_argument(
        "--target-saving",
        type=share,
        help="explain what it takes to save this share against strong-only",
    )
    parser.add_argument(
        "--prices",
        type=Path,
        help="price book file merged over the built-in one (or $TIERGATE_PRICES)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="draw monthly cost against escalation share"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    book = load_price_book(args.prices)
    cheap, strong = book.get(args.cheap), book.get(args.strong)
    try:
        workload = (
            Workload.from_rpm(args.rpm, args.input_tokens, args.output_tokens)
            if args.rpm is not None
            else Workload(args.per_day, args.input_tokens, args.output_tokens)
        )
        levers = Levers(args.escalation, args.mode, args.cached_input, args.batch, args.local)
    except ValueError as error:
        raise CliError(str(error)) from None
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise CliError(f"--plot must name a .png file, got {args.plot}")
    comparison = compare(workload, levers, cheap, strong, book.local_latency)
    report = (
        what_it_takes(workload, levers, cheap, strong, args.target_saving)
        if args.target_saving is not None
        else None
    )
    if args.plot is not None:
        from tiergate.plots.cost_curve import plot_cost_curve

        plot_cost_curve(comparison, args.plot)
    if args.json:
        sys.stdout.write(
            orjson.dumps(to_json(comparison, report, book), option=orjson.OPT_INDENT_2).decode()
            + "\n"
        )
    else:
        sys.stdout.write(render(comparison, report, book))
        if args.plot is not None:
            sys.stdout.write(f"\nPlot written to {args.plot}\n")
    return 0


def _usd(value: float) -> str:
    if value >= 100:
        return f"${value:,.2f}"
    text = f"{value:.6f}".rstrip("0")
    decimals = max(len(text.split(".")[1]), 4)
    return f"${value:.{decimals}f}"


def _strategy_json(comparison: Comparison, name: str) -> dict[str, float]:
    strategy = getattr(comparison, name)
    return {
        "per_request_usd": strategy.per_request_usd,
        "per_day_usd": strategy.per_day_usd,
        "per_month_usd": strategy.per_month_usd,
        "p50_latency_s": strategy.p50_latency_s,
    }


def to_json(comparison: Comparison, report: TargetReport | None, book: PriceBook) -> dict[str, Any]:
    levers = comparison.levers
    body: dict[str, Any] = {
        "requests_per_day": comparison.workload.requests_per_day,
        "input_tokens": comparison.workload.input_tokens,
        "output_tokens": comparison.workload.output_tokens,
        "cheap_model": comparison.cheap.name,
        "strong_model": comparison.strong.name,
        "levers": {
            "mode": levers.mode,
            "escalation": levers.escalation,
            "local": levers.local,
            "cached_input": levers.cached_input,
            "batch": levers.batch,
        },
        "strategies": {
            name: _strategy_json(comparison, name)
            for name in ("cheap_only", "strong_only", "tiered")
        },
        "savings_vs_strong": comparison.savings_vs_strong,
        "cheap_only_savings_vs_strong": comparison.cheap_only_savings_vs_strong,
        "break_even_escalation": comparison.break_even_escalation,
        "notes": comparison.notes,
        "prices": {
            "files": list(book.sources),
            comparison.cheap.name: {
                "source": comparison.cheap.source,
                "as_of": comparison.cheap.as_of,
            },
            comparison.strong.name: {
                "source": comparison.strong.source,
                "as_of": comparison.strong.as_of,
            },
        },
    }
    if report is not None:
        body["target"] = {
            "saving": report.target,
            "current_saving": report.current_saving,
            "reachable": report.reachable,
            "levers": [
                {
                    "lever": a.lever,
                    "needed": a.needed,
                    "best_saving": a.best_saving,
                    "explanation": a.explanation,
                }
                for a in report.answers
            ],
        }
    return body


def render(comparison: Comparison, report: TargetReport | None, book: PriceBook) -> str:
    workload, levers = comparison.workload, comparison.levers
    per_day = workload.requests_per_day
    ladder = f"{comparison.cheap.name} -> {comparison.strong.name}"
    lines = [
        f"Workload: {per_day / 1440:,.0f} requests/min ({per_day:,.0f}/day), "
        f"{workload.input_tokens:,.0f} input + {workload.output_tokens:,.0f} output tokens "
        "per request",
        f"Ladder:   {'local -> ' if levers.local else ''}{ladder}, "
        f"{levers.mode}, {levers.escalation:.1%} escalated"
        + (f", {levers.local:.1%} local" if levers.local else "")
        + (f", {levers.cached_input:.1%} of input cached" if levers.cached_input else "")
        + (f", {levers.batch:.1%} batched" if levers.batch else ""),
        "",
    ]
    rows = []
    for label, name, saving in (
        (
            f"cheap-only ({comparison.cheap.name})",
            "cheap_only",
            comparison.cheap_only_savings_vs_strong,
        ),
        (f"strong-only ({comparison.strong.name})", "strong_only", 0.0),
        ("tiered", "tiered", comparison.savings_vs_strong),
    ):
        strategy = getattr(comparison, name)
        rows.append(
            [
                label,
                _usd(strategy.per_request_usd),
                _usd(strategy.per_day_usd),
                _usd(strategy.per_month_usd),
                f"{strategy.p50_latency_s:.2f} s",
                f"{saving:.1%}",
            ]
        )
    lines.append(
        render_table(
            [
                "strategy",
                "per request",
                "per day",
                "per 30-day month",
                "p50 latency",
                "saving vs strong",
            ],
            rows,
            numeric=[False, True, True, True, True, True],
        )
    )
    lines.append("")
    if comparison.break_even_escalation is None:
        lines.append(
            "Break-even escalation: none: tiered stays cheaper than strong-only "
            "at any escalation share"
        )
    else:
        lines.append(
            f"Break-even escalation: {comparison.break_even_escalation:.1%} "
            "(above this share escalated, tiered costs more than strong-only)"
        )
    for note in comparison.notes:
        lines.append(f"Note: {note}")
    if report is not None:
        lines.append("")
        lines.append(
            f"To save {report.target:.1%} against strong-only (now {report.current_saving:.1%}):"
        )
        for answer in report.answers:
            lines.append(f"  - {answer.lever}: {answer.explanation}")
        if not report.reachable:
            lines.append("  Out of reach with these models and levers.")
    lines.append("")
    lines.append(
        f"Prices: {', '.join(book.sources)} price book; "
        f"{comparison.cheap.name} and {comparison.strong.name} "
        f"as of {comparison.cheap.as_of} ({comparison.cheap.source})"
    )
    return "\n".join(lines) + "\n"
