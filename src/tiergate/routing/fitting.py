"""Fit each tier's calibrator and thresholds on held-out calibration data.

Every tier of the ladder answers every calibration ticket once (``collect``). Then, tier by tier
(``fit_policies``):

- the calibration tickets are split in two halves by seed: the *fit* half trains the tier's
  calibrator (features -> P(correct)), the *threshold* half chooses its thresholds, so the
  statistical guarantee is not spent on data the calibrator has already seen;
- a tier's thresholds are fitted only on the tickets that reach it, i.e. those the tiers below
  did not accept. Escalated tickets are the hard ones; a threshold fitted on all tickets would
  be too lenient for them. The guarantee is then per tier: of the answers a tier accepts, the
  error rate is within the budget (with probability ``route.confidence``), so the mixture of
  accepted answers across tiers is within the budget too.

Calibration data is held out from training and is never the test data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tiergate.calibration import Calibrator, clopper_pearson_upper, fit_thresholds_per_label
from tiergate.datasets import Example
from tiergate.routing.engine import Decision, LocalViewer, local_answer
from tiergate.routing.policy import TierPolicy
from tiergate.routing.route import LOCAL, Route
from tiergate.tiers.base import LocalView, Ticket, Tier, TierAnswer

FIT_SHARE = 0.5


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
    gold = [example.label for example in examples]
    fit_half, threshold_half = _halves(len(examples), route.seed)
    reaching = threshold_half.copy()
    policies: dict[str, TierPolicy] = {}
    report: list[TierFit] = []
    for name in route.tiers:
        answers = runs[name]
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
            # Too little or one-sided data: a constant calibrator at the observed accuracy.
            rows = usable
        features = {
            key: np.array([answer.features.get(key, 0.0) for answer in answers]) for key in names
        }
        calibrator = Calibrator.fit(
            {key: column[rows] for key, column in features.items()}, correct[rows]
        )
        scores = calibrator.predict(features)
        candidates = reaching & usable
        labels = [answers[i].label or "" for i in np.flatnonzero(candidates).tolist()]
        thresholds = fit_thresholds_per_label(
            scores[candidates], correct[candidates], labels, route.error_budget, route.delta
        )
        policy = TierPolicy(calibrator, thresholds)
        policies[name] = policy
        accepted = np.zeros(len(examples), dtype=bool)
        for i in np.flatnonzero(candidates).tolist():
            accepted[i] = scores[i] >= policy.threshold_for(answers[i].label or "")
        taken, wrong = int(accepted.sum()), int((accepted & ~correct).sum())
        upper = clopper_pearson_upper(wrong, taken, route.delta) if taken else 1.0
        costs = [answer.cost_usd for answer in answers]
        report.append(
            TierFit(
                tier=name,
                reached=int(reaching.sum()),
                accepted=taken,
                errors=wrong,
                threshold_half=int(threshold_half.sum()),
                mean_cost_usd=float(np.mean(costs)) if costs else 0.0,
                upper_error=upper,
                lower_accuracy=1.0 - upper,
                usable_share=float(usable.mean()) if len(usable) else 0.0,
            )
        )
        reaching &= ~accepted
    return policies, report


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
