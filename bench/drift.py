"""The audit loop against drift on the full BANKING77 route at its 1% budget.

examples/banking77 as shipped (trained and calibrated as `make demo` does), then the business
moves three queues (every payment a customer does not recognise goes to `compromised_card`; the
emulated Claude tiers are told, the local model is not), served through an in-process gateway
with the audit on (Message Batches against the emulator, in its own process). Prints: false
alarms on a stream with no drift, requests until detection after the drift starts, the
reaction, the audit's cost against the serving cost, and what `calibrate --from-audit` does to
further drifted traffic. The audit queue is drained after every chunk, so figures count
requests. Loopback only; stops by itself (a few minutes; the first run without the demo's
artifacts also trains and calibrates the route).

    .venv/bin/python bench/drift.py                    # 2,000 no-drift requests
    .venv/bin/python bench/drift.py --quick            # the demo's small run (make demo)
    .venv/bin/python bench/drift.py --work /tmp/drift --sample-rate 0.1 --json

Claude answers are emulated, so their accuracy is the emulator's assumption; the local tier is
real.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from tiergate.audit.drill import MOVED, DrillResult, DrillSizes, accepted_accuracy, run_drill

SIZES = ("steady", "before", "drifted", "after", "chunk", "window", "sample_rate", "drift_share")
QUICK = DrillSizes(steady=300, before=200, drifted=400, after_detection=50, refit=False)


def rows(result: DrillResult) -> list[tuple[str, str]]:
    sizes = result.sizes
    steady_alarm = result.steady.first_breach
    detected = result.detected_after
    top_share = result.top_share_after_breach
    table = [
        (
            f"false alarms, no drift ({result.steady.sent:,} requests, "
            f"{len(result.steady.checks)} checks)",
            "none" if steady_alarm is None else f"breach after {steady_alarm:,} requests",
        ),
        (
            "audit, no drift: top tier's own error allowed (its calibration error)",
            f"{result.steady_report.get('reference_error', 0.0):.1%}; "
            + _audit(result.steady_report),
        ),
        (
            f"requests until detection (after {sizes.before} steady; "
            f"{sizes.drift_share:.0%} of the drifted stream moved texts)",
            "not detected" if detected is None else f"{detected:,} drifted requests",
        ),
        (
            "reaction engaged",
            f"{result.reaction or 'none'}"
            + ("" if top_share is None else f": {top_share:.0%} of later requests to the top tier"),
        ),
        (
            f"audit cost, no drift (sample rate {sizes.sample_rate:.0%}, Message Batches)",
            f"${result.audit_usd:.4f} = {_share(result.audit_usd, result.serving_usd)} of serving "
            f"(${result.serving_usd:.4f}), {_share(result.audit_usd, result.strong_only_usd)} "
            f"of strong-only (${result.strong_only_usd:.4f})",
        ),
    ]
    if result.refit:
        share, accuracy = accepted_accuracy(result.after)
        budget = float(result.refit["error_budget"])
        reused = result.refit.get("recorded_answers") or {}
        table += [
            (
                "calibrate --from-audit (silver labels)",
                f"{result.refit['calibration_tickets']:,} audited texts, "
                + ", ".join(f"{tier} {count:,} answers reused" for tier, count in reused.items())
                + f"; ladder {' -> '.join(result.refit['ladder'])}",
            ),
            (
                f"next {result.after.sent} drifted requests after the refit",
                f"accepted {share:.1%}, accepted accuracy "
                + ("-" if accuracy is None else f"{accuracy:.2%}")
                + f" (true labels; budget: at least {1 - budget:.0%}); audit "
                + _audit(result.after_report),
            ),
        ]
    return table


def _audit(report: dict[str, Any]) -> str:
    window = report.get("window") or {}
    return (
        f"{report.get('status')}, {window.get('errors', 0)} of {window.get('audited', 0)} "
        "audited answers disagree with the top tier"
    )


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def render(result: DrillResult) -> str:
    table = rows(result)
    width = max(len(name) for name, _ in table)
    lines = [f"{'figure':<{width}}  value", f"{'-' * width}  -----"]
    lines += [f"{name:<{width}}  {value}" for name, value in table]
    load = os.getloadavg()
    lines.append(
        f"\nmoved: {', '.join(MOVED)} -> {', '.join(sorted(set(MOVED.values())))}; "
        f"{result.seconds:.0f} s; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("out/drift"), help="working folder")
    parser.add_argument("--quick", action="store_true", help="a small run (the demo's)")
    for name in SIZES:
        kind = float if name in ("sample_rate", "drift_share") else int
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else DrillSizes()
    chosen = {name: getattr(args, name) for name in SIZES if getattr(args, name) is not None}
    sizes = dataclasses.replace(sizes, **chosen)
    if args.quick:  # the demo's last part
        rule = "=" * 100
        print(f"\n{rule}\n4. Drift: the audit notices, the gateway reacts (bench/drift.py)\n{rule}")
        print(
            "The same route, served by an in-process gateway that audits 20% of its answers "
            "through\nMessage Batches. Then three queues move: every payment a customer does "
            "not recognise goes\nto compromised_card. The emulated Claude tiers know, the local "
            "tier does not.\n",
            flush=True,
        )
    result = run_drill(args.work, sizes, say=lambda line: print(line, file=sys.stderr))
    if args.json:
        figures: dict[str, Any] = {name: value for name, value in rows(result)}
        print(json.dumps(figures, indent=2))
    else:
        print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
