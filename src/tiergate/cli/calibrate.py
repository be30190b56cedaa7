"""``tiergate calibrate ROUTE``: fit each tier's calibrator and thresholds to the error budget."""

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
    parser = subparsers.add_parser(
        "calibrate", help="fit confidence thresholds to the error budget"
    )
    parser.add_argument("route", type=Path, help="route file (or its folder)")
    parser.add_argument(
        "--data", type=Path, help="calibration data (default: the route's held-out data)"
    )
    parser.add_argument("--limit", type=int, help="use at most N calibration tickets")
    parser.add_argument(
        "--budget",
        type=float,
        help="fit for this error budget instead of the route's (reuses recorded answers)",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also fit budgets from 0.5%% to 10%% and plot cost against accuracy",
    )
    parser.add_argument(
        "--refit",
        action="store_true",
        help="refit from the answers recorded by the last calibration (no new calls)",
    )
    parser.add_argument(
        "--plot", type=Path, help="the sweep's plot (default ARTIFACTS/budgets.png)"
    )
    parser.add_argument(
        "--from-audit",
        type=Path,
        metavar="GATEWAY_CONFIG",
        help="refit on the gateway's audited traffic since the last calibration (the top "
        "tier's answers stand in for labels)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--prices", type=Path, help="price book file merged over the built-in one")
    add_access_arguments(parser)
    add_progress_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 20:
        raise CliError("--limit must be at least 20: thresholds need data")
    if args.budget is not None and not 0.0 < args.budget < 1.0:
        raise CliError(f"--budget must be between 0 and 1 (0.01 is 1%), got {args.budget}")
    if args.from_audit is not None:
        if args.data is not None:
            raise CliError("--from-audit and --data are two sources of data: give one")
        from tiergate.audit.report import audited_route, recorded_answers, silver_examples

        audited = audited_route(args.from_audit, None, args.route)
        args.data = silver_examples(audited)
        args.recorded = recorded_answers(audited)
        say(
            f"calibrating on the audited traffic in {args.data}: the top tier's answers stand in "
            "for labels (silver labels), so the budget bounds disagreement with it; the local "
            "tier is fitted on that traffic alone, not on its training data; the Claude answers "
            "the audit recorded are reused, only missing ones are asked"
        )
    report = asyncio.run(calibrate(args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0


async def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    from tiergate.cli.claude_access import claude_access, estimate_calls_usd
    from tiergate.core.prices import load_price_book
    from tiergate.datasets import Example
    from tiergate.routing.calibrate import CalibrateOptions, calibrate_route
    from tiergate.routing.route import load_route
    from tiergate.routing.runtime import (
        RUNS_FILE,
        check_tiers,
        paid_tiers,
        read_examples,
        route_data,
    )

    route = load_route(args.route)
    book = load_price_book(args.prices)
    check_tiers(route, book)  # before any emulator starts
    options = CalibrateOptions(
        data=args.data,
        limit=args.limit,
        budget=args.budget,
        sweep=args.sweep,
        refit=args.refit,
        plot=args.plot,
        own_rows=getattr(args, "from_audit", None) is None,
        recorded=getattr(args, "recorded", None),
        keep_top_policy=getattr(args, "from_audit", None) is not None,
    )
    recorded = (route.artifacts / RUNS_FILE).exists()
    if not route.claude_tiers or (recorded and (args.budget or args.sweep or args.refit)):
        # Nothing to ask a Claude model: the ladder is free, or the recorded answers are reused.
        with progress_for(args) as tracker:
            report = await calibrate_route(route, book, None, options, say=say, tracker=tracker)
        report["emulated"] = False
        return report
    data = route_data(route)

    def known() -> list[Example]:
        extra = read_examples(route, args.data, require_labels=False) if args.data else []
        return data.train + data.calibration + extra

    async with claude_access(args, route, known) as access:
        say(access.banner())
        if access.real:
            texts = [e.text for e in data.calibration][: args.limit]
            tiers = paid_tiers(route, book, access.transport, pool=data.train)
            estimate = estimate_calls_usd(tiers, texts, {name: len(texts) for name in tiers})
            say(
                f"calibration calls every Claude tier on {len(texts):,} tickets: "
                f"about ${estimate:.2f}"
            )
        with progress_for(args) as tracker:
            report = await calibrate_route(
                route, book, access.transport, options, say=say, tracker=tracker
            )
    report["emulated"] = access.kind == "emulated"
    return report


def render(report: dict[str, Any]) -> str:
    budget = report["error_budget"]
    lines = [
        f"Calibrated {report['route']!r} for an error budget of {budget:.1%} (guarantee at "
        f"{report['confidence']:.0%} confidence) on {report['calibration_tickets']:,} held-out "
        "tickets"
        + (
            f" and {report['local_own_rows']:,} out-of-fold rows of the local tier's own data."
            if report["local_own_rows"]
            else "."
        ),
        "",
    ]
    ladder = report["ladder"]
    if report["certified_bound"] is None and report["thresholds_mode"] == "joint":
        lines.append(
            f"Nothing can be certified at {budget:.1%} with this data: every ticket is flagged. "
            "More calibration data or a looser budget would help."
        )
    else:
        lines.append(f"Chosen ladder: {' -> '.join(ladder)}")
    lines += ["", *_tier_table(report)]
    expected = report["expected"]
    lines += [
        "",
        "Expected (in-sample, on the calibration tickets): "
        f"accepted {percent(expected['accepted_share'])} at "
        f"{percent(expected['accepted_accuracy'])}, all final answers "
        f"{percent(expected['accuracy'])}, ${expected['cost_per_1000_usd']:.4f} per 1,000 tickets",
    ]
    lines += _comparisons(report)
    lines += _alternatives(report)
    lines += [
        "",
        f"Each tier alone, certified at {budget:.1%} (the rest of its tickets flagged):",
        _alone_table(report),
    ]
    if report.get("budgets"):
        lines += [
            "",
            "Across budgets (refitted from the same answers):",
            render_table(
                ["budget", "accepted", "acc. accuracy", "accuracy", "$/1k", "ladder"],
                [
                    [
                        f"{point['budget']:.1%}",
                        f"{point['accepted_share']:.1%}",
                        percent(point["accepted_accuracy"]),
                        percent(point["accuracy"]),
                        f"{point['cost_per_1000_usd']:.4f}",
                        " -> ".join(point["ladder"]),
                    ]
                    for point in report["budgets"]
                ],
                numeric=[True, True, True, True, True, False],
                indent=2,
            ),
        ]
    lines += [
        "",
        f"Saved {report['saved']}" + (f"; plot {report['plot']}" if report.get("plot") else ""),
    ]
    if report.get("reused_answers"):
        lines.append("Refitted from the answers recorded at the last calibration: no new calls.")
    if report.get("emulated"):
        lines.append(
            "Claude answers were EMULATED: their accuracy is the emulator's assumption, "
            "not Claude's."
        )
    return "\n".join(lines)


def _tier_table(report: dict[str, Any]) -> list[str]:
    rows, skipped = [], []
    for row in report["tiers"]:
        if row["skipped"]:
            skipped.append(row["tier"])
            rows.append([row["tier"], *["-"] * 5, "skipped", "-"])
            continue
        rows.append(
            [
                row["tier"],
                f"{row['reached']:,}",
                f"{row['accepted']:,}",
                f"{row['accepted_share']:.1%}",
                percent(row["accepted_accuracy"]),
                f"{row['accepted_accuracy_lower_bound']:.1%}",
                "-" if row["threshold"] is None else f"{row['threshold']:.3f}",
                f"{row['mean_cost_per_call_usd']:.6f}",
            ]
        )
    table = render_table(
        [
            "tier",
            "reached",
            "accepted",
            "share",
            "accuracy",
            f">= ({report['confidence']:.0%})",
            "threshold",
            "$/call",
        ],
        rows,
        numeric=[False, *[True] * 7],
    )
    if not skipped:
        return [table]
    return [table, f"skipped: the cheaper certified ladder leaves out {', '.join(skipped)}"]


def _alternatives(report: dict[str, Any]) -> list[str]:
    """Every sub-ladder certified at the budget (its best local error multiple), and those not."""
    budget = report["error_budget"]
    alternatives = [a for a in report["alternatives"] if a["certified"]]
    if not alternatives:
        return []
    best: dict[tuple[str, ...], dict[str, Any]] = {}
    for alternative in alternatives:  # one row per ladder: its best local error multiple
        key = tuple(alternative["ladder"])
        if (
            key not in best
            or alternative["chosen"]
            or (
                not best[key]["chosen"]
                and alternative["accepted_share"] > best[key]["accepted_share"]
            )
        ):
            best[key] = alternative
    rows = [
        [
            " -> ".join(key),
            f"{alternative['accepted_share']:.1%}",
            percent(alternative["accepted_accuracy"]),
            usd(alternative["cost_per_1000_usd"]),
            "<- chosen" if alternative["chosen"] else "",
        ]
        for key, alternative in best.items()
    ]
    missing = sorted(
        {" -> ".join(a["ladder"]) for a in report["alternatives"]} - {" -> ".join(k) for k in best}
    )
    rows += [[name, "-", "-", "-", f"cannot be certified at {budget:.1%}"] for name in missing]
    return [
        "",
        f"Every ladder this route could run, certified at {budget:.1%} (calibration tickets):",
        render_table(
            ["ladder", "accepted", "accuracy", "$/1k", ""],
            rows,
            numeric=[False, True, True, True, False],
            indent=2,
        ),
    ]


def _alone_table(report: dict[str, Any]) -> str:
    rows = []
    for tier, alone in report["every_answer_accepted"].items():
        share = alone["certified_share_alone"]
        everything = percent(alone["accuracy_if_everything_accepted"])
        if share:
            rows.append(
                [
                    tier,
                    f"{share:.1%}",
                    percent(alone["certified_accuracy_alone"]),
                    usd(alone["certified_cost_per_1000_usd_alone"]),
                    everything,
                    "",
                ]
            )
        else:
            why = (
                "cannot be certified for any share of tickets"
                if alone.get("fitted_alone", True)
                else "not fitted alone: its confidence reads the answers of the tiers below"
            )
            rows.append([tier, "-", "-", "-", everything, why])
    return render_table(
        ["tier", "accepts", "at accuracy", "$/1k", "accuracy answering everything", ""],
        rows,
        numeric=[False, True, True, True, True, False],
        indent=2,
    )


def _comparisons(report: dict[str, Any]) -> list[str]:
    """Cost against one model alone, in words where that model does not meet the budget."""
    expected = report["expected"]
    budget = report["error_budget"]
    lines = []
    alone = report["every_answer_accepted"]
    for kind in ("strong", "cheap"):
        model = expected.get(f"{kind}_only_model")
        cost = expected.get(f"{kind}_only_cost_usd")
        saving = expected.get(f"savings_vs_{kind}")
        if model is None or cost is None or saving is None:
            continue
        accuracy = alone.get(model, {}).get("accuracy_if_everything_accepted")
        meets = alone.get(model, {}).get("meets_budget_alone", False)
        if meets:
            lines.append(
                f"  against {model} answering everything ({percent(accuracy)} accurate, within "
                f"the budget): {saving:.1%} {'saved' if saving >= 0 else 'dearer'}"
            )
        elif saving >= 0:
            lines.append(
                f"  against {model} answering everything: {saving:.1%} saved (and {model} alone "
                f"is {percent(accuracy)} accurate here, outside a {budget:.1%} budget)"
            )
        else:
            lines.append(
                f"  {model} answering everything would cost {1 / (1 - saving):.1%} of what the "
                f"ladder costs, but it is {percent(accuracy)} accurate here: it does not meet a "
                f"{budget:.1%} budget, so it is no alternative at this guarantee"
            )
    return lines
