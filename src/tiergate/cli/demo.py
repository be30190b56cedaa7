"""``tiergate demo``: the lesson's scenario, end to end, offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tiergate.cli.cost import render
from tiergate.core.calculator import Levers, Workload, compare
from tiergate.core.prices import load_price_book
from tiergate.core.target import what_it_takes

# The lesson (shared/seed/lesson.txt): ticket routing at 10,000 requests a minute, a short
# classification prompt and a one-label answer, Haiku 4.5 first and Sonnet 4.6 for the rest.
LESSON_RPM = 10_000
LESSON_INPUT_TOKENS = 400
LESSON_OUTPUT_TOKENS = 20
LESSON_ESCALATION = 0.2
LESSON_TARGET_SAVING = 0.8


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the offline demo (no API key needed)")
    parser.add_argument(
        "--out", type=Path, default=Path("out/demo"), help="where plots go (default %(default)s)"
    )
    parser.add_argument("--prices", type=Path, help="price book file merged over the built-in one")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    book = load_price_book(args.prices)
    cheap, strong = book.get("claude-haiku-4-5"), book.get("claude-sonnet-4-6")
    workload = Workload.from_rpm(LESSON_RPM, LESSON_INPUT_TOKENS, LESSON_OUTPUT_TOKENS)
    levers = Levers(escalation=LESSON_ESCALATION)
    comparison = compare(workload, levers, cheap, strong, book.local_latency)
    report = what_it_takes(workload, levers, cheap, strong, LESSON_TARGET_SAVING)

    from tiergate.plots.cost_curve import plot_cost_curve

    plot = plot_cost_curve(comparison, args.out / "cost_vs_escalation.png")
    out = sys.stdout
    out.write("tiergate demo: the lesson's ticket-routing scenario through the cost calculator\n")
    out.write(
        "(prices from the price book; no API key is used and nothing leaves this machine)\n\n"
    )
    out.write(render(comparison, report, book))
    out.write(f"\nPlot: {plot}\n")
    return 0
