"""``tiergate demo``: the lesson's scenario end to end, offline.

1. The cost calculator on the lesson's workload (10,000 tickets a minute, Haiku 4.5 vs Sonnet 4.6).
2. The real ladder on BANKING77: train the local tier, calibrate every tier to a 1% error budget
   on held-out data, route the test split through local -> Haiku -> Sonnet, and score it.
   The Claude tiers are answered by the built-in emulator (unless ``--real-api``, which uses
   ANTHROPIC_API_KEY and costs money), and the demo says so: their accuracy is then an
   assumption, not Claude's; costs are priced from the emulated token usage with the price book.
3. The measured cost per ticket, projected to the lesson's 10,000 tickets a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from tiergate.cli.cost import render
from tiergate.cli.tables import render_table
from tiergate.core.calculator import DAYS_PER_MONTH, MINUTES_PER_DAY, Levers, Workload, compare
from tiergate.core.prices import load_price_book
from tiergate.core.target import what_it_takes

# The lesson (shared/seed/lesson.txt): ticket routing at 10,000 requests a minute, a short
# classification prompt and a one-label answer, Haiku 4.5 first and Sonnet 4.6 for the rest.
LESSON_RPM = 10_000
LESSON_INPUT_TOKENS = 400
LESSON_OUTPUT_TOKENS = 20
LESSON_ESCALATION = 0.2
LESSON_TARGET_SAVING = 0.8
DEMO_ROUTE = Path(__file__).parents[3] / "examples" / "banking77"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the offline demo (no API key needed)")
    parser.add_argument(
        "--out", type=Path, default=Path("out/demo"), help="where plots go (default %(default)s)"
    )
    parser.add_argument(
        "--route", type=Path, default=DEMO_ROUTE, help="route to demonstrate (default: BANKING77)"
    )
    parser.add_argument(
        "--retrain", action="store_true", help="train the local tier even if a trained one exists"
    )
    parser.add_argument(
        "--calculator-only", action="store_true", help="only part 1, the cost calculator"
    )
    parser.add_argument("--prices", type=Path, help="price book file merged over the built-in one")
    parser.add_argument(
        "--real-api",
        action="store_true",
        help="call the real API with ANTHROPIC_API_KEY (costs money); default: the emulator",
    )
    parser.set_defaults(handler=run)


def _section(title: str) -> None:
    sys.stdout.write(f"\n{'=' * 100}\n{title}\n{'=' * 100}\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    book = load_price_book(args.prices)
    cheap, strong = book.get("claude-haiku-4-5"), book.get("claude-sonnet-4-6")
    workload = Workload.from_rpm(LESSON_RPM, LESSON_INPUT_TOKENS, LESSON_OUTPUT_TOKENS)
    levers = Levers(escalation=LESSON_ESCALATION)
    comparison = compare(workload, levers, cheap, strong, book.local_latency)
    report = what_it_takes(workload, levers, cheap, strong, LESSON_TARGET_SAVING)

    from tiergate.plots.cost_curve import plot_cost_curve

    plot = plot_cost_curve(comparison, args.out / "cost_vs_escalation.png")
    _section("1. The lesson's scenario through the cost calculator (tiergate cost)")
    sys.stdout.write("(prices from the price book; nothing leaves this machine)\n\n")
    sys.stdout.write(render(comparison, report, book))
    sys.stdout.write(f"\nPlot: {plot}\n")
    if args.calculator_only:
        return 0
    return _ladder(args, book)


def _namespace(route: Path, out: Path, *, real_api: bool, **extra: Any) -> argparse.Namespace:
    base = {
        "route": route,
        "data": None,
        "limit": None,
        "json": False,
        "prices": None,
        # The demo never spends money by accident: a key in the environment is not enough.
        "emulate": not real_api,
        "base_url": None,
        "seed": 0,
        "latency": "zero",
        "tiers": None,
        "concurrency": 32,
        "plot": None,
        "budget": None,
        "sweep": False,
        "refit": False,
    }
    base.update(extra)
    return argparse.Namespace(**base)


def _ladder(args: argparse.Namespace, book: Any) -> int:
    import time

    from tiergate.cli import calibrate as calibrate_command
    from tiergate.cli import eval as eval_command
    from tiergate.cli import train as train_command
    from tiergate.routing.route import load_route
    from tiergate.routing.runtime import local_dir

    route = load_route(args.route)
    _section(
        f"2. The ladder on {route.name}: {' -> '.join(route.tiers)}, "
        f"error budget {route.error_budget:.0%}"
    )
    started = time.perf_counter()
    if args.retrain or not local_dir(route).exists():
        sys.stdout.write("Training the local tier (tiergate train) ...\n")
        sys.stdout.flush()
        train_command.run(argparse.Namespace(route=args.route, encoder=None))
    else:
        sys.stdout.write(
            f"Using the trained local tier in {local_dir(route)} (--retrain to train again)\n"
        )
    sys.stdout.write("\nCalibrating every tier on held-out data (tiergate calibrate) ...\n")
    sys.stdout.flush()
    calibration = asyncio.run(
        calibrate_command.calibrate(
            _namespace(
                args.route,
                args.out,
                real_api=args.real_api,
                plot=args.out / "budgets.png",
                sweep=True,
            )
        )
    )
    sys.stdout.write(calibrate_command.render(calibration) + "\n")
    sys.stdout.write("\nRouting the test split (tiergate eval) ...\n")
    sys.stdout.flush()
    result = asyncio.run(
        eval_command.evaluate(_namespace(args.route, args.out, real_api=args.real_api))
    )
    sys.stdout.write(eval_command.render(result) + "\n")
    sys.stdout.write(f"\n(steps 2 took {time.perf_counter() - started:.0f} s)\n")

    _section("3. What the measured ladder would cost at the lesson's 10,000 tickets a minute")
    per_day = LESSON_RPM * MINUTES_PER_DAY
    scale = per_day / result["tickets"] if result["tickets"] else 0.0
    rows = [("tiered (measured)", result["cost_usd"])]
    for kind in ("cheap", "strong"):
        if result.get(f"{kind}_only_cost_usd") is not None:
            rows.append((f"{result[f'{kind}_only_model']}-only", result[f"{kind}_only_cost_usd"]))
    table = render_table(
        ["strategy", "per ticket", "per day", "per 30-day month"],
        [
            [
                name,
                f"{cost / max(result['tickets'], 1):.6f}",
                f"{cost * scale:,.2f}",
                f"{cost * scale * DAYS_PER_MONTH:,.2f}",
            ]
            for name, cost in rows
        ],
        numeric=[False, True, True, True],
    )
    sys.stdout.write(table + "\n")
    sys.stdout.write(
        "\nPrompts here carry the label taxonomy and few-shot examples (the stable part padded to\n"
        "the cache minimum and cached), so a Claude call costs more than the lesson's\n"
        "400-token example.\n"
    )
    if result.get("emulated"):
        sys.stdout.write(
            "\nThe Claude answers above are EMULATED by tiergate's\n"
            "local emulator: the Claude tiers' accuracy is an assumption (docs/emulator.md),\n"
            "not Claude's.\n"
            "The local tier's figures are real: it is trained and scored on BANKING77 here.\n"
        )
    sys.stdout.write(f"\nPlots: {args.out / 'cost_vs_escalation.png'}, {calibration['plot']}\n")
    return 0
