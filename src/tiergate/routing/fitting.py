"""Fit each tier's calibrator and the thresholds that keep accepted answers inside the budget.

Every tier of the ladder answers every calibration ticket once (``collect``). Then
(``fit_policies``) the calibration tickets are split in two halves by seed: the *fit* half
trains each tier's calibrator (features -> P(correct)), the *threshold* half chooses thresholds,
so the statistical guarantee is not spent on data the calibrators have already seen.

Two ways to choose thresholds (the route's ``thresholds``):

- ``joint`` (default): one threshold on calibrated P(correct), the same for every tier,
  certified on the error rate of *all* answers the ladder accepts, which is what the budget
  promises ("at most 1% of accepted answers wrong"). Every threshold-half ticket counts, so it
  certifies with the data a calibration set has.
- ``per_tier``: each tier certified on its own, on the tickets that reach it (those the tiers
  below did not accept: the hard ones), and per label where a label has enough data. A stronger
  promise per tier, but a 1% budget needs about 300 accepted answers per tier, which upper tiers
  seldom see in a calibration set of a few thousand.

Calibration data is held out from training and is never the test data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from tiergate.calibration import (
    ACCEPT_NOTHING,
    Calibrator,
    PerLabelThresholds,
    ThresholdResult,
    clopper_pearson_upper,
    fit_thresholds_per_label,
    min_trials_for_budget,
)
from tiergate.calibration.thresholds import START_MULTIPLE
from tiergate.datasets import Example
from tiergate.routing.engine import Decision, LocalViewer, local_answer
from tiergate.routing.policy import TierPolicy
from tiergate.routing.route import LOCAL, Route
from tiergate.tiers.base import LocalView, Ticket, Tier, TierAnswer

# Share of the calibration data that fits calibrators (a few features each: little is enough);
# the rest chooses thresholds, where every ticket tightens the bound.
FIT_SHARE = 0.4
MAX_JOINT_CANDIDATES = 400
# How many times the Claude tiers' estimated error the free local tier may accept (joint mode).
LOCAL_ERROR_MULTIPLES = (1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class TierFit:
    tier: str
    reached: int  # threshold-half tickets that reached this tier
    accepted: int
    errors: int
    threshold_half: int
    mean_cost_usd: float  # per call of this tier
    upper_error: float  # Clopper-Pearson upper bound on the accepted error
    lower_accuracy: float  # lower bound on accepted accuracy, 1 - upper bound of the errors
    usable_share: float

    @property
    def accepted_share(self) -> float:
        return self.accepted / self.threshold_half if self.threshold_half else 0.0

    @property
    def accepted_accuracy(self) -> float:
        return 1.0 - self.errors / self.accepted if self.accepted else float("nan")


async def collect(
    route: Route,
    tickets: Sequence[str],
    tiers: Mapping[str, Tier],
    local: LocalViewer | None,
    *,
    concurrency: int = 32,
) -> dict[str, list[TierAnswer]]:
    """Every tier of the ladder answers every ticket once."""
    views: list[LocalView | None] = (
        list(local.view(tickets)) if local is not None else [None] * len(tickets)
    )
    semaphore = asyncio.Semaphore(concurrency)

    async def ask(tier: Tier, ticket: Ticket) -> TierAnswer:
        async with semaphore:
            return await tier.answer(ticket)

    runs: dict[str, list[TierAnswer]] = {}
    for name in route.tiers:
        batch = [Ticket(text, view) for text, view in zip(tickets, views, strict=True)]
        if name == LOCAL:
            runs[name] = [local_answer(ticket) for ticket in batch]
        else:
            runs[name] = list(await asyncio.gather(*(ask(tiers[name], t) for t in batch)))
    return runs


def _halves(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(count)
    cut = round(count * FIT_SHARE)
    fit = np.zeros(count, dtype=bool)
    fit[order[:cut]] = True
    return fit, ~fit


def fit_policies(
    route: Route, examples: Sequence[Example], runs: Mapping[str, Sequence[TierAnswer]]
) -> tuple[dict[str, TierPolicy], list[TierFit]]:
    """Calibrators on the fit half; thresholds on the other half, as ``route.thresholds`` says."""
    gold = [example.label for example in examples]
    fit_half, threshold_half = _halves(len(examples), route.seed)
    tiers = [_calibrate(runs[name], gold, fit_half) for name in route.tiers]
    if route.thresholds == "joint":
        joint = _joint_thresholds(route, tiers, np.flatnonzero(threshold_half))
        policies = {
            name: TierPolicy(
                tier.calibrator, PerLabelThresholds(replace(joint.result, threshold=threshold))
            )
            for name, tier, threshold in zip(route.tiers, tiers, joint.thresholds, strict=True)
        }
    else:
        policies = _per_tier_thresholds(route, tiers, threshold_half)
    return policies, _report(route, tiers, policies, threshold_half)


@dataclass(frozen=True)
class _Calibrated:
    calibrator: Calibrator
    scores: np.ndarray  # calibrated P(correct) per ticket; -inf where the answer is unusable
    correct: np.ndarray
    labels: list[str]
    costs: np.ndarray


def _calibrate(
    answers: Sequence[TierAnswer], gold: Sequence[str], fit_half: np.ndarray
) -> _Calibrated:
    usable = np.array([answer.usable for answer in answers])
    correct = np.array(
        [
            answer.usable and answer.label == label
            for answer, label in zip(answers, gold, strict=True)
        ]
    )
    names = sorted({key for answer in answers if answer.usable for key in answer.features})
    rows = fit_half & usable
    if rows.sum() < 10 or len(set(correct[rows].tolist())) < 2:
        # Too little or one-sided data on the fit half: fit on every usable answer instead.
        rows = usable
    features = {
        key: np.array([answer.features.get(key, 0.0) for answer in answers]) for key in names
    }
    calibrator = Calibrator.fit(
        {key: column[rows] for key, column in features.items()}, correct[rows]
    )
    scores = np.where(usable, calibrator.predict(features), -np.inf)
    return _Calibrated(
        calibrator,
        scores,
        correct,
        [answer.label or "" for answer in answers],
        np.array([answer.cost_usd for answer in answers]),
    )


def _first_accepting(accepts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per ticket: whether some tier accepts, and the first tier that does (tickets x tiers)."""
    return np.asarray(accepts.any(axis=1)), np.asarray(accepts.argmax(axis=1))


@dataclass(frozen=True)
class _JointFit:
    thresholds: list[float]  # per tier, in ladder order
    result: ThresholdResult  # the certified walk's figures for the whole ladder
    cost_usd: float  # what the threshold half cost under these thresholds


def _ladder_cost(accepted: np.ndarray, first: np.ndarray, costs: np.ndarray) -> float:
    """Cost of the tickets: every tier up to the one that accepted, or all of them."""
    tiers = costs.shape[1]
    stop = np.where(accepted, first, tiers - 1)
    reached = np.arange(tiers)[None, :] <= stop[:, None]
    return float((costs * reached).sum())


def _joint_thresholds(route: Route, tiers: Sequence[_Calibrated], rows: np.ndarray) -> _JointFit:
    """Thresholds on P(correct) certified on the error of *all* answers the ladder accepts.

    A ticket is accepted by the first tier whose calibrated P(correct) reaches that tier's
    threshold, so which answer is accepted changes with the thresholds; every candidate replays
    the ladder. The Claude tiers share one threshold ``t``; the free local tier uses
    ``1 - k * (1 - t)`` for each ``k`` of LOCAL_ERROR_MULTIPLES: where it is nearly as sure, it
    answers for nothing, and the Claude tiers' surer answers make room for its errors. For each
    ``k``, candidates go from strictest to loosest (an order fixed by the scores
    alone) and fixed-sequence testing stops at the first whose Clopper-Pearson upper bound on the
    accepted error exceeds the budget (as in :func:`tiergate.calibration.fit_threshold`). The
    walks share ``delta`` by Bonferroni, so with probability at least 1 - delta *every*
    certified configuration keeps the error of accepted answers within the budget, and choosing
    the cheapest of them afterwards keeps the guarantee.
    """
    budget, delta = route.error_budget, route.delta
    scores = np.column_stack([tier.scores[rows] for tier in tiers])
    correct = np.column_stack([tier.correct[rows] for tier in tiers])
    costs = np.column_stack([tier.costs[rows] for tier in tiers])
    count = scores.shape[0]
    multiples = (
        LOCAL_ERROR_MULTIPLES if route.tiers[0] == LOCAL and len(route.tiers) > 1 else (1.0,)
    )
    share = delta / len(multiples)
    nothing = _JointFit(
        [ACCEPT_NOTHING] * len(tiers),
        ThresholdResult(ACCEPT_NOTHING, budget, delta, 0.0, 0, 0, 1.0, count),
        _ladder_cost(np.zeros(count, dtype=bool), np.zeros(count, dtype=int), costs),
    )
    finite = np.unique(scores[np.isfinite(scores)])[::-1]
    if count == 0 or finite.size == 0:
        return nothing
    fewest = min_trials_for_budget(budget, share)
    start = max(fewest, min(START_MULTIPLE * fewest, count // 2))
    step = max(1, finite.size // MAX_JOINT_CANDIDATES)
    best = nothing
    for multiple in multiples:
        scale = np.ones(len(tiers))
        scale[0] = multiple
        for threshold in finite[::step]:
            per_tier = 1.0 - scale * (1.0 - threshold)
            accepted, first = _first_accepting(scores >= per_tier[None, :])
            taken = int(accepted.sum())
            if taken < start:
                continue
            errors = int((accepted & ~correct[np.arange(count), first]).sum())
            bound = clopper_pearson_upper(errors, taken, share)
            if bound > budget:
                break
            cost = _ladder_cost(accepted, first, costs)
            if best.result.accepted == 0 or cost < best.cost_usd - 1e-12:
                best = _JointFit(
                    [float(value) for value in per_tier],
                    ThresholdResult(
                        float(threshold), budget, delta, taken / count, taken, errors, bound, count
                    ),
                    cost,
                )
    return best


def _per_tier_thresholds(
    route: Route, tiers: Sequence[_Calibrated], threshold_half: np.ndarray
) -> dict[str, TierPolicy]:
    """Each tier certified on its own, on the tickets that reach it (those below did not accept).

    Escalated tickets are the hard ones, so a tier's thresholds are fitted on them alone; per
    label where a label has enough data. Data-hungry: a 1% budget needs about 300 accepted
    answers per tier, which the upper tiers rarely see.
    """
    reaching = threshold_half.copy()
    policies: dict[str, TierPolicy] = {}
    for name, tier in zip(route.tiers, tiers, strict=True):
        candidates = reaching & np.isfinite(tier.scores)
        indices = np.flatnonzero(candidates).tolist()
        thresholds = fit_thresholds_per_label(
            tier.scores[candidates],
            tier.correct[candidates],
            [tier.labels[i] for i in indices],
            route.error_budget,
            route.delta,
        )
        policy = TierPolicy(tier.calibrator, thresholds)
        policies[name] = policy
        for i in indices:
            if tier.scores[i] >= policy.threshold_for(tier.labels[i]):
                reaching[i] = False
    return policies


def _report(
    route: Route,
    tiers: Sequence[_Calibrated],
    policies: Mapping[str, TierPolicy],
    threshold_half: np.ndarray,
) -> list[TierFit]:
    """What the fitted ladder does on the threshold half, tier by tier."""
    rows = np.flatnonzero(threshold_half)
    accepts = (
        np.column_stack(
            [
                np.array(
                    [tier.scores[i] >= policies[name].threshold_for(tier.labels[i]) for i in rows],
                    dtype=bool,
                )
                for name, tier in zip(route.tiers, tiers, strict=True)
            ]
        )
        if rows.size
        else np.zeros((0, len(tiers)), dtype=bool)
    )
    accepted, first = _first_accepting(accepts)
    report = []
    reached = np.ones(rows.size, dtype=bool)
    for index, (name, tier) in enumerate(zip(route.tiers, tiers, strict=True)):
        mine = accepted & (first == index)
        taken = int(mine.sum())
        wrong = int((mine & ~tier.correct[rows]).sum())
        upper = clopper_pearson_upper(wrong, taken, route.delta) if taken else 1.0
        report.append(
            TierFit(
                tier=name,
                reached=int(reached.sum()),
                accepted=taken,
                errors=wrong,
                threshold_half=int(rows.size),
                mean_cost_usd=float(tier.costs.mean()) if tier.costs.size else 0.0,
                upper_error=upper,
                lower_accuracy=1.0 - upper,
                usable_share=float(np.isfinite(tier.scores).mean()) if tier.scores.size else 0.0,
            )
        )
        reached &= ~mine
    return report


async def replay(
    route: Route,
    policies: Mapping[str, TierPolicy],
    runs: Mapping[str, Sequence[TierAnswer]],
    texts: Sequence[str],
    rows: Sequence[int],
) -> list[Decision]:
    """The engine's decisions for ``rows`` of the recorded runs, under ``policies``: free."""
    from tiergate.routing.engine import Router
    from tiergate.tiers.replay import ReplayTier

    tiers: dict[str, Tier] = {
        name: ReplayTier(name, {texts[i]: runs[name][i] for i in rows}) for name in route.tiers
    }
    router = Router(route, tiers, policies, None)
    return await router.classify_many([texts[i] for i in rows])


def threshold_rows(route: Route, count: int) -> list[int]:
    """The calibration rows that chose thresholds (the in-sample report is about them)."""
    return np.flatnonzero(_halves(count, route.seed)[1]).tolist()


def silver_labels(
    route: Route, examples: Sequence[Example], runs: Mapping[str, Sequence[TierAnswer]]
) -> tuple[list[Example], dict[str, list[TierAnswer]], int]:
    """Where a calibration ticket has no gold label, the top tier's answer stands in for it.

    Tickets the top tier could not answer usably are dropped (nothing to measure against). The
    guarantee then bounds disagreement with the top tier rather than error. Returns the examples,
    the runs restricted to the same tickets, and how many labels were filled in.
    """
    top = runs[route.tiers[-1]]
    keep: list[int] = []
    filled: list[Example] = []
    silver = 0
    for index, example in enumerate(examples):
        if example.label:
            keep.append(index)
            filled.append(example)
        elif top[index].usable and top[index].label:
            keep.append(index)
            filled.append(
                Example(example.text, top[index].label or "", f"silver:{route.tiers[-1]}")
            )
            silver += 1
    return filled, {tier: [answers[i] for i in keep] for tier, answers in runs.items()}, silver
