"""The end-of-run summary, read back from the output file so a resumed run reports the whole file.

``tiergate batch`` prints it as a table (``tiergate.cli.batch.render``) or as JSON.

Share and accuracy per tier (accuracy only where the input has labels), cost against calling
only the cheap or only the strong Claude model (their mean cost per call seen in this file, times
the rows), and in batches mode the discount against the same answers bought live.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiergate.bulk.durable import read_records
from tiergate.bulk.rows import Row, read_rows
from tiergate.routing.route import Route


@dataclass
class TierTally:
    accepted: int = 0
    labelled: int = 0
    correct: int = 0
    calls: int = 0
    paid_usd: float = 0.0
    live_usd: float = 0.0


@dataclass
class Tally:
    rows: int = 0
    labelled: int = 0
    correct: int = 0
    escalated: int = 0
    not_accepted: int = 0
    paid_usd: float = 0.0
    live_usd: float = 0.0
    tiers: dict[str, TierTally] = field(default_factory=dict)


def _gold_labels(source: Path) -> Iterator[tuple[int, Any]]:
    for item in read_rows(source):
        if isinstance(item, Row):
            yield item.line, item.label


def tally(route: Route, source: Path, output: Path) -> Tally:
    result = Tally(tiers={name: TierTally() for name in route.tiers})
    gold = _gold_labels(source)
    for record in read_records(output):
        line, label = next(gold)
        while line < record["line"]:  # rows of the input that failed are not in the output
            line, label = next(gold)
        result.rows += 1
        result.escalated += bool(record["escalated"])
        result.paid_usd += record["cost_usd"]
        result.live_usd += record["live_cost_usd"]
        known = label is not None and route.task.known_gold(label)
        answer = record.get("answer", record.get("label"))
        right = known and answer is not None and route.task.correct(answer, label)
        if known:
            result.labelled += 1
            result.correct += right
        tier = result.tiers.get(record["tier"] or "")
        if record["accepted"] and tier is not None:
            tier.accepted += 1
            if known:
                tier.labelled += 1
                tier.correct += right
        else:
            result.not_accepted += 1
        for name, call in record["calls"].items():
            called = result.tiers.setdefault(name, TierTally())
            called.calls += 1
            called.paid_usd += call["usd"]
            called.live_usd += call["live_usd"]
    return result


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def summarize(
    route: Route,
    source: Path,
    output: Path,
    *,
    mode: str,
    errors: int,
    elapsed_s: float,
    rows_this_run: int,
    upstream_calls: int,
) -> dict[str, Any]:
    counts = tally(route, source, output)
    tiers = {
        name: {
            "accepted": tier.accepted,
            "share": _ratio(tier.accepted, counts.rows),
            "accuracy": _ratio(tier.correct, tier.labelled),
            "calls": tier.calls,
            "cost_usd": tier.paid_usd,
        }
        for name, tier in counts.tiers.items()
    }
    body: dict[str, Any] = {
        "route": route.name,
        "mode": mode,
        "rows": counts.rows,
        "errors": errors,
        "seconds": elapsed_s,
        "rows_this_run": rows_this_run,
        "rows_per_s": _ratio(rows_this_run, elapsed_s),
        "upstream_calls_this_run": upstream_calls,
        "upstream_per_s": _ratio(upstream_calls, elapsed_s),
        "tiers": tiers,
        "not_accepted": counts.not_accepted,
        "escalation_rate": _ratio(counts.escalated, counts.rows),
        "accuracy": _ratio(counts.correct, counts.labelled),
        "cost_usd": counts.paid_usd,
        "live_cost_usd": counts.live_usd,
        "batch_saving_usd": counts.live_usd - counts.paid_usd,
        "only": {},
    }
    for name in dict.fromkeys(route.claude_tiers[:1] + route.claude_tiers[-1:]):
        tier = counts.tiers.get(name)
        if tier is None or not tier.calls:
            continue
        alone = tier.paid_usd / tier.calls * counts.rows
        alone_live = tier.live_usd / tier.calls * counts.rows
        body["only"][name] = {
            "cost_usd": alone,
            "live_cost_usd": alone_live,
            "saving": _ratio(alone - counts.paid_usd, alone),
        }
    return body
