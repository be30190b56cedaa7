"""Calibrating a route: collect every tier's answers on held-out tickets, fit, save, report.

The library function behind ``tiergate calibrate`` (the command parses and prints; this does the
work). Answers already recorded for the same tickets are reused when only the budget changes
(``budget=``, ``sweep=``, ``refit=``): refitting is free, no model is asked again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tiergate.classifier.artifact import data_hash
from tiergate.core.prices import PriceBook
from tiergate.datasets import Example
from tiergate.errors import TiergateError
from tiergate.progress import NO_PROGRESS, Tracker
from tiergate.routing.evaluate import Baselines, summarize
from tiergate.routing.fitting import Fitted, OwnRows, collect, fit_policies, replay, silver_labels
from tiergate.routing.route import LOCAL, Route
from tiergate.routing.runtime import (
    RUNS_FILE,
    LocalModelViewer,
    RecordedRuns,
    RuntimeSetupError,
    check_held_out,
    check_labels,
    check_tiers,
    load_calibration,
    load_local,
    load_runs,
    own_rows,
    paid_tiers,
    read_examples,
    route_data,
    save_policies,
    save_runs,
    uses_local_model,
)
from tiergate.tasks.base import Item, Task
from tiergate.tiers.base import TierAnswer
from tiergate.transports.base import Transport

BUDGETS = (0.005, 0.01, 0.02, 0.05, 0.1)
Say = Callable[[str], None]


class CalibrationError(TiergateError, ValueError):
    """Calibration cannot run as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class CalibrateOptions:
    data: Path | None = None  # calibration data (default: the route's held-out data)
    limit: int | None = None  # use at most this many tickets
    budget: float | None = None  # fit for this error budget instead of the route's
    sweep: bool = False  # also fit every budget in BUDGETS and report each
    refit: bool = False  # reuse recorded answers at the route's budget
    plot: Path | None = None  # the sweep's plot (default ARTIFACTS/budgets.png)
    # Also fit the local tier on its out-of-fold training rows; off when the calibration data
    # is live traffic that moved away from the training data (``calibrate --from-audit``).
    own_rows: bool = True
    # Answers already paid for (text -> tier -> answer: the audit loop's records), used instead
    # of asking those tiers again on those texts.
    recorded: Mapping[str, Mapping[str, TierAnswer]] | None = None
    # Labels that are the top tier's own answers (silver) cannot judge it (it agrees with
    # itself): keep the policy its labelled calibration fitted, when there is one, so its unsure
    # answers stay unaccepted. The cheaper tiers' certificate holds: the top tier accepts a
    # subset of what it accepted, all agreeing with themselves.
    keep_top_policy: bool = False


@dataclass(frozen=True)
class BudgetPoint:
    budget: float
    ladder: list[str]
    accepted_share: float
    accepted_accuracy: float | None
    accuracy: float | None
    cost_per_1000_usd: float


def _quiet(message: str) -> None:
    return None


async def calibrate_route(
    route: Route,
    book: PriceBook,
    transport: Transport | None,
    options: CalibrateOptions = CalibrateOptions(),
    *,
    say: Say = _quiet,
    tracker: Tracker = NO_PROGRESS,
) -> dict[str, Any]:
    """Fit the route's policies, save them, and return the report (see ``docs/calibration.md``).

    ``transport`` reaches the paid tiers; it is needed only when answers must be collected.
    ``tracker`` sees one stage per tier answering the calibration tickets.
    """
    check_tiers(route, book)
    if options.budget is not None:
        if not 0.0 < options.budget < 1.0:
            raise CalibrationError(f"the budget must be between 0 and 1, got {options.budget}")
        route = replace(route, error_budget=options.budget)
    data = route_data(route)
    examples = (
        read_examples(route, options.data, require_labels=False)
        if options.data
        else data.calibration
    )
    check_labels(
        route,
        [e for e in examples if route.task.known_gold(e.label)],
        str(options.data or "calibration data"),
    )
    if options.limit is not None:
        examples = examples[: options.limit]
    if not examples and not _certifies_on_own_rows(route, options):
        raise CalibrationError("no calibration tickets")
    local = load_local(route) if uses_local_model(route) else None
    if local is not None:
        check_held_out(route, local, examples)
    reusable = _reusable(route, examples, local) if _may_reuse(options) else None
    reused: dict[str, int] | None = None
    if reusable is not None:
        say(f"refitting from the answers recorded in {route.artifacts / RUNS_FILE} (no new calls)")
        examples, runs, own = reusable.examples, reusable.runs, reusable.own
    else:
        if route.claude_tiers and transport is None:
            raise CalibrationError(
                "the recorded answers do not fit this calibration (other tickets, tiers or local "
                f"model): run `tiergate calibrate {route.path}` to collect them again"
                if _may_reuse(options)
                else "the route has Claude tiers but no client was given"
            )
        items = [Item(e.text, e.id, e.request) for e in examples]
        tiers = paid_tiers(route, book, transport, local) if transport is not None else {}
        if items:
            names = ", ".join(route.tiers)
            say(f"collecting answers of {names} on {len(items):,} held-out tickets")
        # A tier that reads the answers below it must be asked beside today's answers of those
        # tiers, not replayed from a record made beside other ones: nothing is reused there.
        recorded = None if route.task.uses_earlier_answers else options.recorded
        if recorded is not None:
            reused = _reused(route, examples, recorded)
            say(
                "reusing the answers the audit recorded: "
                + "; ".join(
                    f"{tier} {known:,} recorded, {len(items) - known:,} asked"
                    for tier, known in reused.items()
                )
            )
        runs = await collect(route, items, tiers, local, tracker=tracker, recorded=recorded)
        own = None
        if local is not None and LOCAL in route.tiers and options.own_rows:
            say("scoring the local tier out of fold on its own training data")
            gold = [e.label for e in examples if isinstance(e.label, str) and e.label]
            own = own_rows(local, gold or None, seed=route.seed)
        save_runs(route, examples, runs, own, model_hash=_model_hash(local))
    silver = 0
    if any(not route.task.known_gold(example.label) for example in examples):
        examples, runs, silver = silver_labels(route, examples, runs)
        say(
            f"{silver:,} calibration tickets had no label: {route.tiers[-1]}'s answers stand in "
            "for gold, so the budget bounds disagreement with it"
        )
    fitted = fit_policies(route, examples, runs, own)
    if options.keep_top_policy:
        fitted = _with_labelled_top_policy(route, fitted, say)
    report = await _report(route, examples, runs, own, fitted, silver)
    saved = save_policies(
        route,
        fitted.policies,
        {
            "fitted_on": str(options.data or "held-out calibration data"),
            "tickets": len(examples),
            "ladder": list(fitted.ladder_tiers),
            "tiers_report": report["tiers"],
            "every_answer_accepted": report["every_answer_accepted"],
        },
        budget_from_route=options.budget is None,
        mean_cost_usd={fit.tier: fit.mean_cost_usd for fit in fitted.fits if fit.tier != LOCAL},
    )
    report["saved"] = str(saved)
    report["reused_answers"] = reusable is not None
    if reused is not None:
        report["recorded_answers"] = reused
    if options.sweep:
        points = await _sweep(route, examples, runs, own, fitted)
        report["budgets"] = [asdict(point) for point in points]
        report["plot"] = str(_plot(route, points, report, options.plot))
    return report


def _certifies_on_own_rows(route: Route, options: CalibrateOptions) -> bool:
    """A local-only route with nothing held out: its out-of-fold rows are the evidence."""
    return route.tiers == (LOCAL,) and options.own_rows and options.data is None


def _with_labelled_top_policy(route: Route, fitted: Fitted, say: Say) -> Fitted:
    top = route.tiers[-1]
    try:
        kept = load_calibration(route).policies.get(top)
    except RuntimeSetupError:
        kept = None
    if kept is None:
        return fitted
    say(f"{top} keeps the policy of its labelled calibration (silver labels cannot judge it)")
    policy = replace(kept, skipped=fitted.policies[top].skipped)
    return replace(fitted, policies={**fitted.policies, top: policy})


def _reused(
    route: Route, examples: Sequence[Example], recorded: Mapping[str, Mapping[str, TierAnswer]]
) -> dict[str, int]:
    """Per Claude tier, how many of these tickets' answers were recorded (the rest are asked)."""
    return {
        tier: sum(tier in recorded.get(example.text, {}) for example in examples)
        for tier in route.claude_tiers
    }


def _may_reuse(options: CalibrateOptions) -> bool:
    return options.data is None and (options.budget is not None or options.sweep or options.refit)


def _model_hash(local: LocalModelViewer | None) -> str | None:
    """What the recorded local answers depend on: the model's examples and how it was built
    (encoder, runtime, lexical view...), so a route retrained with other ``local:`` settings
    does not refit on the old model's scores."""
    if local is None:
        return None
    examples = data_hash(local.model.examples)
    settings = local.model.training.get("settings")
    if not settings:
        return examples  # a model built without recorded settings: as before
    built = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return f"{examples}+settings:{built}"


def _reusable(
    route: Route, examples: Sequence[Example], local: LocalModelViewer | None
) -> RecordedRuns | None:
    """The recorded answers, if they are for these tickets, every tier, and this local model."""
    if not (route.artifacts / RUNS_FILE).exists():
        return None
    recorded = load_runs(route)
    if [e.text for e in recorded.examples] != [e.text for e in examples]:
        return None
    if any(tier not in recorded.runs for tier in route.tiers):
        return None
    if recorded.model_hash != _model_hash(local):
        return None
    if LOCAL in route.tiers and local is not None and recorded.own is None:
        return None
    return recorded


def _baselines(route: Route, runs: dict[str, list[TierAnswer]]) -> Baselines:
    claude = route.claude_tiers
    means = {
        name: sum(a.cost_usd for a in runs[name]) / len(runs[name]) for name in claude if runs[name]
    }
    cheap = claude[0] if claude else None
    strong = claude[-1] if claude else None
    return Baselines(cheap, means.get(cheap or ""), strong, means.get(strong or ""))


def _accuracy(task: Task, answers: Sequence[TierAnswer], examples: Sequence[Example]) -> float:
    right = sum(
        1
        for a, e in zip(answers, examples, strict=True)
        if a.usable and task.correct(a.payload, e.label)
    )
    return right / len(examples) if examples else 0.0


def _own_summary(summary: dict[str, Any], fitted: Fitted, own: OwnRows) -> dict[str, Any]:
    """The expected figures of a local-only route certified on its out-of-fold rows alone."""
    fit = fitted.fits[0]
    accepted = fit.accepted if not fit.skipped else 0
    share = accepted / fit.tickets if fit.tickets else 0.0
    return summary | {
        "tickets": fit.tickets,
        "accuracy": float(own.correct.mean()) if len(own) else None,
        "accepted_share": share,
        "accepted_accuracy": 1.0 - fit.errors / accepted if accepted else None,
        "unaccepted_share": 1.0 - share,
        "evidence": "out-of-fold rows of the local tier's training data",
    }


async def _report(
    route: Route,
    examples: list[Example],
    runs: dict[str, list[TierAnswer]],
    own: OwnRows | None,
    fitted: Fitted,
    silver: int,
) -> dict[str, Any]:
    items = [Item(e.text, e.id, e.request) for e in examples]
    rows = list(range(len(examples)))
    decisions = await replay(route, fitted.policies, runs, items, rows)
    baselines = _baselines(route, runs)
    summary = summarize(route, decisions, [e.label for e in examples], baselines)
    if not examples and own is not None:
        summary = _own_summary(summary, fitted, own)
    tier_rows = [
        {
            "tier": fit.tier,
            "skipped": fit.skipped,
            "reached": fit.reached,
            "accepted": fit.accepted,
            "accepted_share": fit.accepted_share,
            "accepted_accuracy": None if fit.accepted == 0 else fit.accepted_accuracy,
            "accepted_accuracy_lower_bound": fit.lower_accuracy,
            "threshold": _finite(fitted.policies[fit.tier].thresholds.global_result.threshold),
            "labels_with_own_threshold": len(fitted.policies[fit.tier].thresholds.per_label),
            "usable_share": fit.usable_share,
            "mean_cost_per_call_usd": fit.mean_cost_usd,
        }
        for fit in fitted.fits
    ]
    alternatives = []
    if fitted.ladder is not None:
        for family, best in fitted.ladder.families.items():
            names = [route.tiers[index] for index in family.tiers]
            alternatives.append(
                {
                    "ladder": names,
                    "local_error_multiple": family.free_multiple,
                    "certified": best is not None,
                    "accepted_share": best.accepted_share if best else 0.0,
                    "accepted_accuracy": (
                        1.0 - best.errors / best.accepted if best and best.accepted else None
                    ),
                    "bound": best.bound if best else None,
                    "cost_per_1000_usd": (
                        best.cost_usd / best.tickets * 1000 if best and best.tickets else None
                    ),
                    "chosen": best is not None and best == fitted.ladder.chosen,
                }
            )
    everything = {tier: _accuracy(route.task, runs[tier], examples) for tier in route.tiers}
    if not examples and own is not None:
        everything[LOCAL] = float(own.correct.mean()) if len(own) else 0.0
    single = {}
    for index, tier in enumerate(route.tiers):
        certified = fitted.alone.get(tier)
        single[tier] = {
            # A tier whose features read the tiers below it is never fitted alone.
            "fitted_alone": index == 0 or not route.task.uses_earlier_answers,
            "accuracy_if_everything_accepted": everything[tier],
            "meets_budget_alone": everything[tier] >= 1.0 - route.error_budget,
            "certified_share_alone": certified.accepted_share if certified else 0.0,
            "certified_accuracy_alone": (
                1.0 - certified.errors / certified.accepted
                if certified and certified.accepted
                else None
            ),
            "certified_cost_per_1000_usd_alone": (
                certified.cost_usd / certified.tickets * 1000 if certified else None
            ),
        }
    chosen = fitted.ladder.chosen if fitted.ladder else None
    return {
        "route": route.name,
        "error_budget": route.error_budget,
        "confidence": route.confidence,
        "thresholds_mode": route.thresholds,
        "calibration_tickets": len(examples),
        "local_own_rows": len(own) if own is not None else 0,
        "silver_labels": silver,
        "ladder": list(fitted.ladder_tiers),
        "local_error_multiple": chosen.family.free_multiple if chosen else None,
        "certified_bound": chosen.bound if chosen else None,
        "unaccepted_cost_usd": fitted.unaccepted_cost_usd,
        "tiers": tier_rows,
        "expected": summary,
        "alternatives": alternatives,
        "every_answer_accepted": single,
    }


def _finite(value: float) -> float | None:
    return value if value != float("inf") else None


async def _sweep(
    route: Route,
    examples: list[Example],
    runs: dict[str, list[TierAnswer]],
    own: OwnRows | None,
    fitted: Fitted,
) -> list[BudgetPoint]:
    points = []
    items = [Item(e.text, e.id, e.request) for e in examples]
    rows = list(range(len(examples)))
    gold = [example.label for example in examples]
    baselines = _baselines(route, runs)
    for budget in sorted({*BUDGETS, route.error_budget}):
        variant = replace(route, error_budget=budget)
        refitted = fit_policies(variant, examples, runs, own, walks=fitted.walks)
        decisions = await replay(variant, refitted.policies, runs, items, rows)
        summary = summarize(variant, decisions, gold, baselines)
        points.append(
            BudgetPoint(
                budget,
                list(refitted.ladder_tiers),
                summary["accepted_share"],
                summary["accepted_accuracy"],
                summary["accuracy"],
                summary["cost_per_1000_usd"],
            )
        )
    return points


def _plot(
    route: Route, points: list[BudgetPoint], report: dict[str, Any], path: Path | None
) -> Path:
    from tiergate.plots.budgets import BudgetPoint as PlotPoint
    from tiergate.plots.budgets import plot_budgets

    expected = report["expected"]
    tickets = max(expected["tickets"], 1)

    def per_1000(total: float | None) -> float | None:
        return None if total is None else total / tickets * 1000

    return plot_budgets(
        [
            PlotPoint(
                p.budget,
                p.accuracy or 0.0,
                p.accepted_accuracy,
                p.cost_per_1000_usd,
                p.accepted_share,
            )
            for p in points
        ],
        path or route.artifacts / "budgets.png",
        title=f"{route.name}: cost against accuracy across error budgets\n(calibration data, "
        f"{' -> '.join(route.tiers)})",
        strong_only_per_1000_usd=per_1000(expected.get("strong_only_cost_usd")),
        cheap_only_per_1000_usd=per_1000(expected.get("cheap_only_cost_usd")),
    )
