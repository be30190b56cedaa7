"""Fit each tier's calibrator and the thresholds that keep accepted answers inside the budget.

Evidence, and why each tier uses what it uses:

- Every tier of the ladder answers every held-out calibration ticket once (``collect``). The
  paid tiers are measured there and nowhere else: each answer costs money.
- The free local tier also brings *its own rows*: out-of-fold predictions on its training data
  (``LocalModel.cross_fit``: each row scored by a model that did not train on it). Its stratum
  is measured on those rows plus the held-out tickets, usually five times as many.
- Calibrators (features -> P(correct)) are cross-fitted: the rows are split in five folds by
  the route's seed and each row is scored by a calibrator fitted on the other four, so every row
  both trains a calibrator and tests a threshold without testing on what it trained. The
  calibrator that serves is fitted on all rows. A calibrator has a handful of weights; the fold
  calibrators and the served one differ by little, and ``docs/calibration.md`` says what the
  guarantee assumes.

Two ways to choose thresholds (the route's ``thresholds``):

- ``joint`` (default): certified on the error of *all* answers the ladder accepts, which is what
  the budget promises ("at most 1% of accepted answers wrong"). Every sub-ladder the route could
  run is considered (see :mod:`tiergate.calibration.ladder`), and the cheapest certified one is
  kept, where a ticket no tier accepts counts ``unaccepted_cost_usd``; a looser budget never
  costs more, and a free ladder never accepts less.
- ``per_tier``: each tier certified on its own, on the tickets that reach it (those the tiers
  below did not accept: the hard ones), and per label where a label has enough data. A stronger
  promise per tier, but a 1% budget needs about 300 accepted answers per tier, which upper tiers
  seldom see in a calibration set of a few thousand.

Calibration data is held out from training and is never the test data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tiergate.calibration import (
    ACCEPT_NOTHING,
    Calibrator,
    PerLabelThresholds,
    ThresholdResult,
    clopper_pearson_upper,
    fit_thresholds_per_label,
)
from tiergate.calibration.ladder import Candidate, LadderFit, OwnEvidence, TierEvidence, Walks
from tiergate.calibration.ladder import walk_all as walk_ladders
from tiergate.datasets import Example
from tiergate.progress import NO_PROGRESS, Stage, Tracker
from tiergate.routing.engine import Decision, LocalViewer, earlier_answers, local_answer
from tiergate.routing.policy import TierPolicy
from tiergate.routing.route import LOCAL, Route
from tiergate.tasks.base import Context, Item, Task
from tiergate.tiers.base import LocalView, Tier, TierAnswer

CALIBRATOR_FOLDS = 5
# Unless the route says what a ticket no tier accepts costs (unaccepted_cost_usd), it is counted
# as this many calls of the ladder's top tier: flagged tickets end with a person, whose minute is
# worth more than any one API call. Used only to choose among certified ladders.
UNACCEPTED_TOP_CALLS = 10


@dataclass(frozen=True)
class OwnRows:
    """The local tier's out-of-fold predictions on its own training data."""

    labels: list[str]  # predicted (the threshold keys of a per-tier fit)
    correct: NDArray[np.bool_]
    features: dict[str, NDArray[np.float64]]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class TierFit:
    """What the fitted ladder does on the held-out tickets, for one tier."""

    tier: str
    reached: int  # held-out tickets that reached this tier
    accepted: int
    errors: int
    tickets: int
    mean_cost_usd: float  # per call of this tier
    upper_error: float  # Clopper-Pearson upper bound on the accepted error
    lower_accuracy: float  # lower bound on accepted accuracy, 1 - upper bound of the errors
    usable_share: float
    skipped: bool = False

    @property
    def accepted_share(self) -> float:
        return self.accepted / self.tickets if self.tickets else 0.0

    @property
    def accepted_accuracy(self) -> float:
        return 1.0 - self.errors / self.accepted if self.accepted else float("nan")


@dataclass(frozen=True)
class Fitted:
    policies: dict[str, TierPolicy]
    fits: list[TierFit]
    walks: Walks | None  # joint mode: every sub-ladder's walk, to refit at other budgets
    ladder: LadderFit | None  # joint mode: the choice at this budget and the alternatives
    unaccepted_cost_usd: float
    # Each tier alone, certified at the budget on the same evidence (for the report only: the
    # ladder's guarantee does not rest on these walks).
    alone: dict[str, Candidate | None] = field(default_factory=dict)

    @property
    def ladder_tiers(self) -> tuple[str, ...]:
        return tuple(name for name, policy in self.policies.items() if not policy.skipped)


async def collect(
    route: Route,
    items: Sequence[Item],
    tiers: Mapping[str, Tier],
    local: LocalViewer | None,
    *,
    concurrency: int = 32,
    tracker: Tracker = NO_PROGRESS,
    recorded: Mapping[str, Mapping[str, TierAnswer]] | None = None,
) -> dict[str, list[TierAnswer]]:
    """Every tier of the ladder answers every item once (one progress stage per tier);
    ``recorded`` (text -> tier -> answer: what the audit loop kept) answers instead where it
    can, and only the rest are asked."""
    views: list[LocalView | None] = [None] * len(items)
    if local is not None:
        description = f"{LOCAL} on the calibration split"
        with tracker.stage(description, len(items), unit="tickets") as stage:
            # One call, as before progress was reported: an int8 encoder's vectors depend on
            # the batches it is given.
            views = list(local.view([item.text for item in items]))
            stage.advance(len(items))
    contexts = [Context(view) for view in views]
    semaphore = asyncio.Semaphore(concurrency)

    async def ask(tier: Tier, item: Item, context: Context, stage: Stage) -> TierAnswer:
        async with semaphore:
            answer = await tier.answer(item, context)
        stage.advance(cost_usd=answer.cost_usd)
        return answer

    runs: dict[str, list[TierAnswer]] = {}
    for name in route.tiers:
        if name == LOCAL:
            runs[name] = [local_answer(context) for context in contexts]
        else:
            # Each tier sees the answers of the tiers below, as when the engine climbs.
            seen = [
                Context(context.local, earlier_answers([runs[below][row] for below in runs]))
                for row, context in enumerate(contexts)
            ]
            known = [(recorded or {}).get(item.text, {}).get(name) for item in items]
            missing = [row for row, answer in enumerate(known) if answer is None]
            description = f"{name} on the calibration split"
            with tracker.stage(description, len(items), unit="tickets") as stage:
                stage.advance(len(items) - len(missing))
                asked = await asyncio.gather(
                    *(ask(tiers[name], items[r], seen[r], stage) for r in missing)
                )
            answers = dict(zip(missing, asked, strict=True))
            runs[name] = [known[row] or answers[row] for row in range(len(items))]
    return runs


def fit_policies(
    route: Route,
    examples: Sequence[Example],
    runs: Mapping[str, Sequence[TierAnswer]],
    own: OwnRows | None = None,
    *,
    walks: Walks | None = None,
) -> Fitted:
    """Cross-fitted calibrators, then thresholds as ``route.thresholds`` says.

    ``own``: the local tier's out-of-fold rows on its training data (joint mode uses them for
    the local stratum). ``walks``: the result of an earlier fit on the same evidence, to choose
    again at ``route.error_budget`` without walking again (budget sweeps).
    """
    gold = [example.label for example in examples]
    own_scores: _OwnScores | None = None
    if own is not None and route.tiers[0] == LOCAL and len(own):
        own_scores = _own_scores(own, route.seed)
    tiers = [
        # The local tier's calibrator is the one fitted on its own rows (many more).
        _calibrate(route.task, runs[name], gold, route.seed, own_scores.calibrator)
        if name == LOCAL and own_scores is not None
        else _calibrate(route.task, runs[name], gold, route.seed)
        for name in route.tiers
    ]
    if own is not None and own_scores is not None and not examples:
        # A local-only route with nothing held out: its own rows are the calibration tickets.
        tiers[0] = _Calibrated(
            own_scores.calibrator,
            own_scores.scores,
            own.correct,
            list(own.labels),
            np.zeros(len(own)),
            dict(own.features),
        )
        own = None
    unaccepted = route.unaccepted_cost_usd
    if unaccepted is None:  # by default: a person's look is worth ten calls of the top tier
        top = tiers[-1].costs
        unaccepted = UNACCEPTED_TOP_CALLS * float(top.mean()) if top.size else 0.0
    if route.thresholds == "per_tier":
        policies = _per_tier_thresholds(route, tiers, own, own_scores)
        return Fitted(policies, _report(route, tiers, policies), None, None, unaccepted)
    extra = OwnEvidence(own_scores.scores, own.correct) if own_scores and own else None
    if walks is None:
        evidence = [
            TierEvidence(name, tier.scores, tier.correct, tier.costs, free=name == LOCAL)
            for name, tier in zip(route.tiers, tiers, strict=True)
        ]
        walks = walk_ladders(evidence, route.delta, extra, whole=route.task.uses_earlier_answers)
    chosen = walks.fit(route.error_budget, unaccepted)
    policies = _joint_policies(route, tiers, chosen)
    # A tier alone, for the report; not one whose scores read the answers of tiers below.
    alone = {
        tier.name: walk_ladders([tier], route.delta, extra if tier.free else None)
        .fit(route.error_budget, unaccepted)
        .chosen
        if index == 0 or not route.task.uses_earlier_answers
        else None
        for index, tier in enumerate(walks.tiers)
    }
    return Fitted(policies, _report(route, tiers, policies), walks, chosen, unaccepted, alone)


@dataclass(frozen=True)
class _Calibrated:
    calibrator: Calibrator
    scores: NDArray[np.float64]  # cross-fitted P(correct) per ticket; -inf where unusable
    correct: NDArray[np.bool_]
    labels: list[str]  # each answer's threshold key (task.threshold_key)
    costs: NDArray[np.float64]
    features: dict[str, NDArray[np.float64]]


@dataclass(frozen=True)
class _OwnScores:
    calibrator: Calibrator
    scores: NDArray[np.float64]


def _folds(count: int, seed: int) -> NDArray[np.intp]:
    return np.asarray(np.random.default_rng(seed).permutation(count) % CALIBRATOR_FOLDS)


def cross_fit_scores(
    features: Mapping[str, NDArray[np.float64]],
    correct: NDArray[np.bool_],
    usable: NDArray[np.bool_],
    seed: int,
) -> tuple[Calibrator, NDArray[np.float64]]:
    """The calibrator fitted on every usable row, and each row's score from a calibrator fitted
    on the other folds (-inf where unusable)."""
    count = correct.size
    scores = np.full(count, -np.inf)
    if not usable.any():
        return Calibrator.fit({k: np.zeros(1) for k in features}, np.zeros(1)), scores
    full = Calibrator.fit({k: v[usable] for k, v in features.items()}, correct[usable])
    folds = _folds(count, seed)
    for fold in range(CALIBRATOR_FOLDS):
        held = (folds == fold) & usable
        train = (folds != fold) & usable
        if not held.any():
            continue
        # Too little or one-sided data to fit on the other folds: the full fit stands in.
        calibrator = (
            Calibrator.fit({k: v[train] for k, v in features.items()}, correct[train])
            if train.sum() >= 10 and len(set(correct[train].tolist())) == 2
            else full
        )
        scores[held] = calibrator.predict({k: v[held] for k, v in features.items()})
    return full, scores


def _calibrate(
    task: Task,
    answers: Sequence[TierAnswer],
    gold: Sequence[object],
    seed: int,
    fitted: Calibrator | None = None,
) -> _Calibrated:
    """A tier's answers scored by a cross-fitted calibrator, or by ``fitted`` (one fitted on
    other rows, so every answer here is out of sample already)."""
    usable = np.array([answer.usable for answer in answers], dtype=bool)
    correct = np.array(
        [a.usable and task.correct(a.payload, g) for a, g in zip(answers, gold, strict=True)],
        dtype=bool,
    )
    names = sorted({key for answer in answers if answer.usable for key in answer.features})
    features = {
        key: np.array([answer.features.get(key, 0.0) for answer in answers]) for key in names
    }
    if fitted is not None:
        calibrator = fitted
        scores = np.full(correct.size, -np.inf)
        if usable.any():
            scores[usable] = fitted.predict({k: v[usable] for k, v in features.items()})
    else:
        calibrator, scores = cross_fit_scores(features, correct, usable, seed)
    return _Calibrated(
        calibrator,
        scores,
        correct,
        [task.threshold_key(a.payload) if a.usable else "" for a in answers],
        np.array([answer.cost_usd for answer in answers], dtype=np.float64),
        features,
    )


def _own_scores(own: OwnRows, seed: int) -> _OwnScores:
    calibrator, scores = cross_fit_scores(
        own.features, own.correct, np.ones(len(own), dtype=bool), seed + 1
    )
    return _OwnScores(calibrator, scores)


def _joint_policies(
    route: Route, tiers: Sequence[_Calibrated], fit: LadderFit
) -> dict[str, TierPolicy]:
    chosen: Candidate | None = fit.chosen
    active: dict[int, float] = {}
    if chosen is not None:
        active = dict(zip(chosen.family.tiers, chosen.thresholds, strict=True))
    result = ThresholdResult(
        ACCEPT_NOTHING,
        fit.budget,
        fit.delta,
        chosen.accepted_share if chosen else 0.0,
        chosen.accepted if chosen else 0,
        chosen.errors if chosen else 0,
        chosen.bound if chosen else 1.0,
        fit.tickets,
    )
    policies: dict[str, TierPolicy] = {}
    for index, (name, tier) in enumerate(zip(route.tiers, tiers, strict=True)):
        threshold = active.get(index, ACCEPT_NOTHING)
        thresholds = PerLabelThresholds(
            ThresholdResult(
                threshold,
                result.budget,
                result.delta,
                result.accepted_share,
                result.accepted,
                result.errors,
                result.upper_bound,
                result.calibration_size,
            )
        )
        # With nothing certified the whole ladder still answers (and flags); otherwise a tier
        # outside the chosen sub-ladder is never asked.
        skipped = chosen is not None and index not in active
        policies[name] = TierPolicy(tier.calibrator, thresholds, skipped=skipped)
    return policies


def _per_tier_thresholds(
    route: Route,
    tiers: Sequence[_Calibrated],
    own: OwnRows | None,
    own_scores: _OwnScores | None,
) -> dict[str, TierPolicy]:
    """Each tier certified on its own, on the tickets that reach it (those below did not accept).

    Escalated tickets are the hard ones, so a tier's thresholds are fitted on them alone; per
    label where a label has enough data. The local tier, first, also uses its own rows.
    Data-hungry: a 1% budget needs about 300 accepted answers per tier, which the upper tiers
    rarely see.
    """
    reaching = np.ones(tiers[0].scores.size, dtype=bool)
    policies: dict[str, TierPolicy] = {}
    for position, (name, tier) in enumerate(zip(route.tiers, tiers, strict=True)):
        candidates = reaching & np.isfinite(tier.scores)
        indices = np.flatnonzero(candidates).tolist()
        scores = tier.scores[candidates]
        correct = tier.correct[candidates]
        labels = [tier.labels[i] for i in indices]
        if position == 0 and own is not None and own_scores is not None:
            scores = np.concatenate([own_scores.scores, scores])
            correct = np.concatenate([own.correct, correct])
            labels = [*own.labels, *labels]
        thresholds = fit_thresholds_per_label(
            scores, correct, labels, route.error_budget, route.delta
        )
        policy = TierPolicy(tier.calibrator, thresholds)
        policies[name] = policy
        for i in indices:
            if tier.scores[i] >= policy.threshold_for(tier.labels[i]):
                reaching[i] = False
    return policies


def _report(
    route: Route, tiers: Sequence[_Calibrated], policies: Mapping[str, TierPolicy]
) -> list[TierFit]:
    """What the fitted ladder does on the held-out tickets, tier by tier."""
    count = tiers[0].scores.size
    reached = np.ones(count, dtype=bool)
    report = []
    for name, tier in zip(route.tiers, tiers, strict=True):
        policy = policies[name]
        mine = (
            np.zeros(count, dtype=bool)
            if policy.skipped
            else reached
            & np.array(
                [tier.scores[i] >= policy.threshold_for(tier.labels[i]) for i in range(count)],
                dtype=bool,
            )
        )
        taken = int(mine.sum())
        wrong = int((mine & ~tier.correct).sum())
        upper = clopper_pearson_upper(wrong, taken, route.delta) if taken else 1.0
        report.append(
            TierFit(
                tier=name,
                reached=0 if policy.skipped else int(reached.sum()),
                accepted=taken,
                errors=wrong,
                tickets=count,
                mean_cost_usd=float(tier.costs.mean()) if tier.costs.size else 0.0,
                upper_error=upper,
                lower_accuracy=1.0 - upper,
                usable_share=float(np.isfinite(tier.scores).mean()) if count else 0.0,
                skipped=policy.skipped,
            )
        )
        reached &= ~mine
    return report


async def replay(
    route: Route,
    policies: Mapping[str, TierPolicy],
    runs: Mapping[str, Sequence[TierAnswer]],
    items: Sequence[Item],
    rows: Sequence[int],
) -> list[Decision]:
    """The engine's decisions for ``rows`` of the recorded runs, under ``policies``: free."""
    from tiergate.routing.engine import Router
    from tiergate.tiers.replay import ReplayTier

    tiers: dict[str, Tier] = {
        name: ReplayTier(name, {items[i].text: runs[name][i] for i in rows}) for name in route.tiers
    }
    router = Router(route, tiers, policies, None)
    return await router.decide_many([items[i] for i in rows])


def silver_labels(
    route: Route, examples: Sequence[Example], runs: Mapping[str, Sequence[TierAnswer]]
) -> tuple[list[Example], dict[str, list[TierAnswer]], int]:
    """Where a calibration item has no gold answer, the top tier's answer stands in for it.

    Tickets the top tier could not answer usably are dropped (nothing to measure against). The
    guarantee then bounds disagreement with the top tier rather than error. Returns the examples,
    the runs restricted to the same tickets, and how many labels were filled in.
    """
    top = runs[route.tiers[-1]]
    keep: list[int] = []
    filled: list[Example] = []
    silver = 0
    for index, example in enumerate(examples):
        if route.task.known_gold(example.label):
            keep.append(index)
            filled.append(example)
        elif top[index].usable:
            keep.append(index)
            filled.append(
                Example(
                    example.text,
                    top[index].payload,
                    f"silver:{route.tiers[-1]}",
                    example.id,
                    example.request,
                )
            )
            silver += 1
    return filled, {tier: [answers[i] for i in keep] for tier, answers in runs.items()}, silver
