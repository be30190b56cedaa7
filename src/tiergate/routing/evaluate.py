"""Scores a list of decisions against gold labels: accuracy, shares, cost, latency."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tiergate.calibration import clopper_pearson_upper
from tiergate.core.prices import PriceBook
from tiergate.progress import NO_PROGRESS, Tracker
from tiergate.routing.engine import Decision, Router
from tiergate.routing.route import LOCAL, Route
from tiergate.tasks.base import Context, Item, Payload
from tiergate.tiers.base import LocalView
from tiergate.transports.base import Transport


@dataclass(frozen=True)
class Baselines:
    """What the same tickets would cost on one model alone (per-call mean cost x tickets)."""

    cheap_model: str | None
    cheap_per_call_usd: float | None
    strong_model: str | None
    strong_per_call_usd: float | None


def per_call_costs(decisions: Sequence[Decision]) -> dict[str, float]:
    """Mean cost of one call, per Claude model, over the calls these decisions made."""
    totals: dict[str, list[float]] = {}
    for decision in decisions:
        for answer in decision.answers:
            if answer.model and answer.model != LOCAL and answer.cost_usd > 0:
                totals.setdefault(answer.tier, []).append(answer.cost_usd)
    return {tier: float(np.mean(costs)) for tier, costs in totals.items()}


def _interval(successes: int, trials: int, delta: float) -> tuple[float, float] | None:
    """Two-sided Clopper-Pearson interval on a success rate, at level 1 - delta."""
    if trials == 0:
        return None
    low = 1.0 - clopper_pearson_upper(trials - successes, trials, delta / 2)
    high = clopper_pearson_upper(successes, trials, delta / 2)
    return (low, high)


def summarize(
    route: Route,
    decisions: Sequence[Decision],
    gold: Sequence[Payload],
    baselines: Baselines,
    *,
    delta: float = 0.05,
) -> dict[str, Any]:
    count = len(decisions)
    task = route.task
    right = np.array(
        [
            d.payload is not None and task.correct(d.payload, g)
            for d, g in zip(decisions, gold, strict=True)
        ],
        dtype=bool,
    )
    accepted = np.array([d.accepted for d in decisions], dtype=bool)
    tiers: dict[str, Any] = {}
    for name in route.tiers:
        mine = np.array([d.accepted and d.tier == name for d in decisions], dtype=bool)
        taken = int(mine.sum())
        correct = int((mine & right).sum())
        tiers[name] = {
            "accepted_share": taken / count if count else 0.0,
            "accepted": taken,
            "accepted_accuracy": correct / taken if taken else None,
            "accepted_accuracy_interval": _interval(correct, taken, delta),
            "reached": sum(1 for d in decisions if any(s.tier == name for s in d.trace)),
            "cost_usd": float(
                sum(s.cost_usd for d in decisions for s in d.trace if s.tier == name)
            ),
        }
    unaccepted = ~accepted
    cost = float(sum(d.cost_usd for d in decisions))
    latencies = np.array([d.latency_s for d in decisions]) if count else np.zeros(1)
    total_accepted = int(accepted.sum())
    body: dict[str, Any] = {
        "route": route.name,
        "tickets": count,
        "ladder": list(route.tiers),
        "error_budget": route.error_budget,
        "accuracy": float(right.mean()) if count else None,
        "accepted_share": total_accepted / count if count else 0.0,
        "accepted_accuracy": float(right[accepted].mean()) if total_accepted else None,
        "unaccepted_share": float(unaccepted.mean()) if count else 0.0,
        "flagged": int(sum(d.flagged for d in decisions)),
        "handed_to_human": int(sum(d.handed_to_human for d in decisions)),
        "escalation_rate": float(np.mean([d.escalated for d in decisions])) if count else 0.0,
        "tiers": tiers,
        "cost_usd": cost,
        "cost_per_1000_usd": cost / count * 1000 if count else 0.0,
        "latency_p50_s": float(np.percentile(latencies, 50)),
        "latency_p95_s": float(np.percentile(latencies, 95)),
    }
    for kind in ("cheap", "strong"):
        model = getattr(baselines, f"{kind}_model")
        per_call = getattr(baselines, f"{kind}_per_call_usd")
        body[f"{kind}_only_model"] = model
        body[f"{kind}_only_cost_usd"] = per_call * count if per_call is not None else None
    body["task"] = task.kind
    body.update(task.report([d.payload for d in decisions], gold, [d.accepted for d in decisions]))
    strong = body["strong_only_cost_usd"]
    body["savings_vs_strong"] = 1.0 - cost / strong if strong else None
    cheap = body["cheap_only_cost_usd"]
    body["savings_vs_cheap"] = 1.0 - cost / cheap if cheap else None
    return body


@dataclass(frozen=True)
class EvaluateOptions:
    data: Path | None = None  # labelled tickets (default: the route's test data)
    tiers: Sequence[str] | None = None  # a subset of the ladder, in the route's order
    limit: int | None = None
    concurrency: int = 32


BASELINE_SAMPLE = 30
CHUNK = 500


async def evaluate_route(
    route: Route,
    book: PriceBook,
    transport: Transport | None,
    options: EvaluateOptions = EvaluateOptions(),
    *,
    say: Callable[[str], None] = lambda message: None,
    tracker: Tracker = NO_PROGRESS,
) -> dict[str, Any]:
    """Route labelled tickets through the calibrated ladder and score it (``tiergate eval``).

    ``tracker`` sees one stage: the tickets routed, with what they cost.
    """
    from tiergate.routing.runtime import (
        check_tiers,
        labelled_examples,
        load_calibration_report,
        open_router,
    )

    check_tiers(route, book)
    full = route
    if options.tiers:
        route = route.restricted(list(options.tiers))
    path, examples = labelled_examples(route, options.data, options.limit)
    items = [Item(example.text, example.id, example.request) for example in examples]
    router = open_router(
        route, book, transport if route.claude_tiers else None, concurrency=options.concurrency
    )
    decisions: list[Decision] = []
    ladder = " -> ".join(router.route.tiers)
    split = "the test split" if options.data is None else path.name
    with tracker.stage(f"{ladder} on {split}", len(items), unit="tickets") as stage:
        for start in range(0, len(items), CHUNK):
            decisions += await router.decide_many(
                items[start : start + CHUNK],
                each=lambda decision: stage.advance(cost_usd=decision.cost_usd),
            )
    baselines = await _sampled_baselines(full, book, transport, router, decisions, items)
    result = summarize(router.route, decisions, [e.label for e in examples], baselines)
    result["data"] = str(path)
    result["ladder"] = [t for t in router.route.tiers if not router.policies[t].skipped]
    alone = load_calibration_report(full).get("every_answer_accepted") or {}
    for kind in ("cheap", "strong"):
        model = result.get(f"{kind}_only_model")
        figures = alone.get(model or "", {})
        result[f"{kind}_only_accuracy_on_calibration"] = figures.get(
            "accuracy_if_everything_accepted"
        )
        result[f"{kind}_only_meets_budget"] = figures.get("meets_budget_alone")
    return result


async def _sampled_baselines(
    full: Route,
    book: PriceBook,
    transport: Transport | None,
    router: Router,
    decisions: Sequence[Decision],
    items: Sequence[Item],
) -> Baselines:
    """Per-call cost of the cheap and strong models: observed in the run, else on a sample."""
    from tiergate.routing.runtime import paid_tiers

    observed = per_call_costs(decisions)
    claude = full.claude_tiers
    if not claude:
        return Baselines(None, None, None, None)
    cheap, strong = claude[0], claude[-1]
    missing = [name for name in dict.fromkeys((cheap, strong)) if name not in observed]
    if missing and transport is not None:
        sample = list(items[:BASELINE_SAMPLE])
        views: list[LocalView | None] = (
            list(router.local.view([item.text for item in sample]))
            if router.local is not None
            else [None] * len(sample)
        )
        tiers = paid_tiers(full, book, transport, router.local)
        for name in missing:
            answers = await asyncio.gather(
                *(
                    tiers[name].answer(item, Context(view))
                    for item, view in zip(sample, views, strict=True)
                )
            )
            costs = [answer.cost_usd for answer in answers if answer.cost_usd > 0]
            if costs:
                observed[name] = sum(costs) / len(costs)
    return Baselines(cheap, observed.get(cheap), strong, observed.get(strong))
