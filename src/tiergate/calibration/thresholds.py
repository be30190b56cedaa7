"""Acceptance thresholds that keep the error of accepted answers within a budget, with proof.

The question per tier: accept an answer when its calibrated score is at least ``t``; which is
the lowest ``t`` (the most answers accepted) such that the error rate among accepted answers is
at most ``budget``? Picking ``t`` where the calibration set's *empirical* error meets the budget
overfits: among many thresholds, some look good by luck.

Procedure (Learn-then-Test, Angelopoulos et al. 2021, with fixed-sequence testing):

1. Candidate thresholds are the calibration scores themselves, thinned to at most
   ``max_candidates`` evenly spaced by accepted count, ordered from strictest to loosest. The
   order depends on the scores only, never on the correctness flags, so it is fixed before any
   hypothesis is tested.
2. For each candidate ``t`` the null hypothesis is "the error rate of answers with score >= t
   exceeds the budget". It is rejected when the one-sided Clopper-Pearson upper bound (level
   ``1 - delta``) on that error, from the ``n`` accepted calibration answers and their ``k``
   errors, is at most the budget (equivalently, the exact binomial p-value is at most delta).
3. Walk the sequence and stop at the first candidate whose null is not rejected. The last
   rejected candidate is the threshold. Fixed-sequence testing controls the family-wise error at
   ``delta`` without any Bonferroni split, because a later hypothesis is only tested when all
   earlier ones were rejected: with probability at least ``1 - delta`` the chosen threshold's
   true accepted error is within the budget (for new data exchangeable with calibration data).
4. Where the walk starts matters: candidates accepting fewer than :func:`min_trials_for_budget`
   examples cannot be certified even with zero errors, and just above that count one confident
   mistake among the top scores fails the first test and ends the walk with nothing accepted
   (seen on CLINC150, where a few out-of-scope messages score very high). So by default the
   walk starts at the candidate accepting ``4 x min_trials_for_budget`` answers (about 1,200 at
   a 1% budget, where a few errors still pass), or half the calibration set if that is smaller,
   and never below ``min_trials_for_budget``. The start depends on the scores' count only,
   never on correctness, so the sequence is still fixed in advance. If no candidate is
   rejected, nothing is accepted.

Monotonicity: for one start, a looser budget or delta rejects every null a stricter one does, so
it accepts at least as much. The default start moves with budget and delta, though, so a looser
setting may test a few stricter candidates first and, if errors cluster among the very top
scores, stop earlier. Pass ``start_accepted`` (e.g. the count for the strictest setting you
compare) to make a family of budgets strictly monotone.

Per label (:func:`fit_thresholds_per_label`): a label with at least ``min_count`` calibration
answers gets its own procedure at the same ``delta`` (each label's guarantee holds on its own;
for all labels at once divide ``delta`` by the number of labels); other labels use the global
threshold. A label with enough data whose procedure certifies nothing accepts nothing: falling
back to the global threshold there would undo the test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tiergate.calibration.bounds import clopper_pearson_upper, min_trials_for_budget

ACCEPT_NOTHING = math.inf
DEFAULT_MAX_CANDIDATES = 200
START_MULTIPLE = 4


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    """A fitted acceptance threshold: accept an answer when ``score >= threshold``.

    ``threshold`` is ``math.inf`` when no threshold met the budget (accept nothing); then the
    share, error and bound describe nothing accepted (0, 0 and 1).
    """

    threshold: float
    budget: float
    delta: float
    accepted_share: float
    accepted: int
    errors: int
    upper_bound: float
    calibration_size: int

    @property
    def accepts_anything(self) -> bool:
        return math.isfinite(self.threshold)

    @property
    def empirical_error(self) -> float:
        return self.errors / self.accepted if self.accepted else 0.0

    def accepts(self, scores: ArrayLike) -> NDArray[np.bool_]:
        return np.asarray(scores, dtype=np.float64) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold if self.accepts_anything else None,
            "budget": self.budget,
            "delta": self.delta,
            "accepted_share": self.accepted_share,
            "accepted": self.accepted,
            "errors": self.errors,
            "upper_bound": self.upper_bound,
            "calibration_size": self.calibration_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ThresholdResult:
        threshold = data["threshold"]
        return cls(
            threshold=ACCEPT_NOTHING if threshold is None else float(threshold),
            budget=float(data["budget"]),
            delta=float(data["delta"]),
            accepted_share=float(data["accepted_share"]),
            accepted=int(data["accepted"]),
            errors=int(data["errors"]),
            upper_bound=float(data["upper_bound"]),
            calibration_size=int(data["calibration_size"]),
        )


def fit_threshold(
    scores: ArrayLike,
    correct: ArrayLike,
    budget: float,
    delta: float = 0.05,
    *,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    start_accepted: int | None = None,
) -> ThresholdResult:
    """The lowest certified threshold (see the module docstring for the procedure).

    ``start_accepted`` starts the walk at the first candidate accepting at least that many
    calibration answers (never before the count that can be certified at all); by default
    ``min(4 x min_trials_for_budget, calibration size // 2)``.
    """
    score_array = np.asarray(scores, dtype=np.float64).ravel()
    correct_array = np.asarray(correct, dtype=bool).ravel()
    if score_array.shape != correct_array.shape:
        raise ValueError("scores and correct must have the same length")
    if np.isnan(score_array).any():
        raise ValueError("scores contain NaN")
    size = score_array.size
    nothing = ThresholdResult(ACCEPT_NOTHING, budget, delta, 0.0, 0, 0, 1.0, size)
    if size == 0:
        return nothing
    order = np.argsort(-score_array, kind="stable")
    sorted_scores = score_array[order]
    cumulative_errors = np.cumsum(~correct_array[order])
    # A threshold equal to a score accepts every tie of it, so only the last index of each run
    # of equal scores is a real candidate.
    run_ends = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    fewest = min_trials_for_budget(budget, delta)
    if start_accepted is None:
        start_accepted = min(START_MULTIPLE * fewest, size // 2)
    start = max(fewest, start_accepted)
    run_ends = run_ends[run_ends + 1 >= start]
    best = nothing
    for end in _thin(run_ends, max_candidates):
        accepted = int(end) + 1
        errors = int(cumulative_errors[end])
        bound = clopper_pearson_upper(errors, accepted, delta)
        if bound > budget:
            break
        best = ThresholdResult(
            threshold=float(sorted_scores[end]),
            budget=budget,
            delta=delta,
            accepted_share=accepted / size,
            accepted=accepted,
            errors=errors,
            upper_bound=bound,
            calibration_size=size,
        )
    return best


def _thin(run_ends: NDArray[np.intp], max_candidates: int) -> NDArray[np.intp]:
    """Keep at most ``max_candidates`` candidates, evenly spread, always including the loosest.

    Fewer, coarser steps mean fewer chances for one unlucky stretch to stop the walk early.
    """
    if run_ends.size <= max_candidates:
        return run_ends
    picks = np.linspace(0, run_ends.size - 1, max_candidates).round().astype(np.intp)
    return run_ends[np.unique(picks)]


@dataclass(frozen=True, slots=True)
class PerLabelThresholds:
    """A global threshold plus label-specific ones where a label had enough calibration data."""

    global_result: ThresholdResult
    per_label: Mapping[str, ThresholdResult] = field(default_factory=dict)

    def threshold_for(self, label: str) -> float:
        result = self.per_label.get(label)
        return (result or self.global_result).threshold

    def accepts(self, scores: ArrayLike, labels: Sequence[str]) -> NDArray[np.bool_]:
        thresholds = np.array([self.threshold_for(label) for label in labels], dtype=np.float64)
        return np.asarray(scores, dtype=np.float64) >= thresholds

    def to_dict(self) -> dict[str, Any]:
        return {
            "global": self.global_result.to_dict(),
            "per_label": {label: r.to_dict() for label, r in sorted(self.per_label.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerLabelThresholds:
        return cls(
            global_result=ThresholdResult.from_dict(data["global"]),
            per_label={
                label: ThresholdResult.from_dict(r) for label, r in data["per_label"].items()
            },
        )


def fit_thresholds_per_label(
    scores: ArrayLike,
    correct: ArrayLike,
    labels: Sequence[str],
    budget: float,
    delta: float = 0.05,
    min_count: int | None = None,
    *,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
) -> PerLabelThresholds:
    """A global threshold plus one per label with at least ``min_count`` calibration answers.

    ``labels`` are the labels the tier answered (not the gold labels): the threshold is looked
    up by the answer at serving time, when the gold label is unknown. ``min_count`` defaults to
    twice the fewest accepted answers that could ever be certified at this budget.
    """
    score_array = np.asarray(scores, dtype=np.float64).ravel()
    correct_array = np.asarray(correct, dtype=bool).ravel()
    label_array = np.asarray(list(labels), dtype=object)
    if label_array.shape != score_array.shape:
        raise ValueError("labels must have one entry per score")
    needed = 2 * min_trials_for_budget(budget, delta) if min_count is None else min_count
    global_result = fit_threshold(
        score_array, correct_array, budget, delta, max_candidates=max_candidates
    )
    per_label: dict[str, ThresholdResult] = {}
    names, counts = np.unique(label_array.astype(str), return_counts=True)
    for name, count in zip(names.tolist(), counts.tolist(), strict=True):
        if count < needed:
            continue
        mask = label_array == name
        per_label[name] = fit_threshold(
            score_array[mask], correct_array[mask], budget, delta, max_candidates=max_candidates
        )
    return PerLabelThresholds(global_result=global_result, per_label=per_label)
