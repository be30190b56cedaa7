"""The live error estimate from audited answers: counts, bounds and the verdict. Pure.

Every audited answer is one trial: an error when the top tier disagrees with it. The upper
bound (one-sided Clopper-Pearson at the route's confidence) is what the live traffic certifies;
the lower bound is the evidence against the budget. The verdict:

- ``within``: the upper bound is inside the budget (live traffic certifies it);
- ``unproven``: too few audits to say either way (the upper bound is above the budget, the
  lower bound is not);
- ``breached``: the lower bound is above the budget plus the reference's own error: with the
  route's confidence, accepted answers are wrong more often than the budget allows. Only this
  raises the alarm: an upper bound is above any budget while audits are few, so alarming on it
  would alarm at every start.

The reference is the top tier, which errs too (an emulated Sonnet is right on 93% of BANKING77's
calibration tickets): an answer can disagree with it and be right. Disagreement is at most the
answer's error plus the reference's, so the error is at least the disagreement less the
reference's error (``allowance``, its error on the calibration tickets: 0 after a refit on its
own answers, where the budget bounds disagreement itself). Without it, a 1% budget audited
against a reference wrong 7% of the time would alarm on any traffic.

The route's figure pools the answers sampled at the plain rate (a uniform sample of accepted
answers, top-tier answers among them counting as agreeing with themselves); answers sampled to
reach a tier's or label's minimum count only in that tier's and label's figures.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tiergate.calibration.bounds import clopper_pearson_lower, clopper_pearson_upper

WITHIN, UNPROVEN, BREACHED = "within", "unproven", "breached"


@dataclass(frozen=True, slots=True)
class Audited:
    """One audited, accepted answer."""

    tier: str
    label: str  # the answer's threshold key (a label for classification)
    agree: bool
    by_rate: bool  # sampled at the plain rate (else to reach a stratum's minimum)
    at: float = 0.0


def bounds(errors: int, trials: int, confidence: float) -> dict[str, Any]:
    delta = 1.0 - confidence
    return {
        "audited": trials,
        "errors": errors,
        "error_rate": errors / trials if trials else None,
        "upper_bound": clopper_pearson_upper(errors, trials, delta),
        "lower_bound": clopper_pearson_lower(errors, trials, delta),
    }


def verdict(figures: dict[str, Any], budget: float, allowance: float = 0.0) -> str:
    if figures["lower_bound"] > budget + allowance:
        return BREACHED
    return WITHIN if figures["upper_bound"] <= budget else UNPROVEN


class Tally:
    """Audited answers since the last calibration, and the last ``window`` of the route's."""

    def __init__(self, window: int, allowance: float = 0.0) -> None:
        self.window = window
        self.allowance = allowance  # the reference's own error rate (module docstring)
        self._recent: deque[Audited] = deque(maxlen=window)
        self._route: Counter[bool] = Counter()
        self._tiers: dict[str, Counter[bool]] = {}
        self._labels: dict[tuple[str, str], Counter[bool]] = {}
        self._tier_recent: dict[str, deque[bool]] = {}

    def add(self, audited: Audited) -> None:
        if audited.by_rate:
            self._recent.append(audited)
            self._route[audited.agree] += 1
        self._tiers.setdefault(audited.tier, Counter())[audited.agree] += 1
        self._labels.setdefault((audited.tier, audited.label), Counter())[audited.agree] += 1
        recent = self._tier_recent.setdefault(audited.tier, deque(maxlen=self.window))
        recent.append(audited.agree)

    def extend(self, records: Iterable[Audited]) -> None:
        for record in records:
            self.add(record)

    def window_verdict(self, budget: float, confidence: float) -> str:
        errors = sum(not a.agree for a in self._recent)
        return verdict(bounds(errors, len(self._recent), confidence), budget, self.allowance)

    def count(self, tier: str, label: str) -> int:
        return sum(self._labels.get((tier, label), Counter()).values())

    def report(self, budget: float, confidence: float) -> dict[str, Any]:
        window = bounds(sum(not a.agree for a in self._recent), len(self._recent), confidence)
        since = bounds(self._route[False], sum(self._route.values()), confidence)
        tiers = []
        for tier in sorted(self._tiers):
            counts = self._tiers[tier]
            recent = self._tier_recent[tier]
            labels = [
                {"label": label, **bounds(c[False], sum(c.values()), confidence)}
                for (owner, label), c in sorted(self._labels.items())
                if owner == tier
            ]
            tiers.append(
                {
                    "tier": tier,
                    "window": bounds(sum(not agree for agree in recent), len(recent), confidence),
                    "since_calibration": bounds(counts[False], sum(counts.values()), confidence),
                    "labels": labels,
                }
            )
        return {
            "error_budget": budget,
            "confidence": confidence,
            "window_size": self.window,
            "reference_error": self.allowance,
            "status": verdict(window, budget, self.allowance),
            "status_since_calibration": verdict(since, budget, self.allowance),
            "window": window,
            "since_calibration": since,
            "tiers": tiers,
        }
