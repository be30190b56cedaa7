"""``tiergate audit ROUTE --config GATEWAY.yaml``: the live error estimate against the budget."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tiergate.cli.formatting import percent, say
from tiergate.cli.progress import add_progress_argument, progress_for
from tiergate.cli.tables import render_table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit", help="live error of a gateway route's answers, from its audits"
    )
    parser.add_argument("route", help="the route's name in the gateway config")
    parser.add_argument("--config", type=Path, required=True, help="the gateway's config file")
    parser.add_argument(
        "--router-records",
        type=Path,
        metavar="DIR",
        help="write the route's shadow comparisons as pre-call router records to DIR "
        "(train.jsonl, test.jsonl) for `tiergate router train --data DIR --silver`",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_progress_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tiergate.audit.report import audit_report, audited_route, router_records

    audited = audited_route(args.config, args.route)
    if args.router_records is not None:
        counts = router_records(audited, args.router_records)
        say(
            f"wrote {counts['train']:,} training and {counts['test']:,} test records to "
            f"{args.router_records} (unlabelled: train the router with --silver)"
        )
    with progress_for(args) as tracker:
        report = audit_report(audited, tracker=tracker)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


STATUS = {
    "within": "within the budget (the upper bound certifies it)",
    "unproven": "not proven either way yet (more audits needed)",
    "breached": "BREACHED (the lower bound is above the budget)",
}


def _bound_row(name: str, figures: dict[str, Any]) -> list[str]:
    return [
        name,
        f"{figures['audited']:,}",
        f"{figures['errors']:,}",
        percent(figures["error_rate"]),
        f"{figures['lower_bound']:.2%}",
        f"{figures['upper_bound']:.2%}",
    ]


def render(report: dict[str, Any]) -> str:
    budget, confidence = report["error_budget"], report["confidence"]
    lines = [
        f"Audit of route {report['route']!r}: error budget {budget:.2%} at {confidence:.0%} "
        f"confidence; {report['records']:,} audit records since the last calibration "
        f"({report['mode']}, sample rate {report['sample_rate']:.1%}), "
        f"audit cost ${report['audit_cost_usd']:,.4f}",
        "",
        *(
            [
                "BREACHED: the live error crossed the budget since the last calibration "
                "(it stands until the route is recalibrated)",
                "",
            ]
            if report["breached"]
            else []
        ),
        f"Window (last {report['window_size']:,} audited): {STATUS[report['status']]}",
        f"Since calibration: {STATUS[report['status_since_calibration']]}",
        "",
    ]
    rows = [
        _bound_row("route, window", report["window"]),
        _bound_row("route, since calibration", report["since_calibration"]),
    ]
    for tier in report["tiers"]:
        rows.append(_bound_row(f"{tier['tier']}, window", tier["window"]))
        rows.append(_bound_row(f"{tier['tier']}, since calibration", tier["since_calibration"]))
        rows += [_bound_row(f"  {row['label']}", row) for row in tier["labels"] if row["errors"]]
    lines += [
        render_table(
            ["", "audited", "errors", "rate", "lower", "upper"],
            rows,
            numeric=[False, True, True, True, True, True],
        ),
        "",
        "An error is an accepted answer the top tier disagrees with (its answers are the "
        "reference, as silver labels).",
    ]
    return "\n".join(lines)
