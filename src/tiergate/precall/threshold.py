"""Fit the routing threshold to a quality target with a bound that holds out of sample.

The question: prompts whose router score is at least ``t`` take the cheap side of the policy
(the cheap model, or the cheap model checked by a second cheap one), the rest go straight to
the strong model. Which ``t`` sends the most to the cheap side while the policy's accuracy stays
at least ``quality`` times the strong model's alone, on new prompts? Reading ``t`` off the
calibration curve where the empirical ratio meets the target overfits twice: the ratio is
estimated from a finite sample, and among many thresholds some look good by luck.

Procedure (Learn-then-Test, Angelopoulos et al. 2021, with fixed-sequence testing):

1. Scores are **cross-fitted**: each calibration prompt is scored by a model that never saw it
   (K folds by a hash of the prompt), and the router serves a new prompt with the model of the
   prompt's own hash fold. So a new prompt's (score, outcomes) is distributed exactly as a
   calibration prompt's, and the K-fold estimate targets the quality of the router as deployed
   (Bayle et al. 2020, "Cross-validation confidence intervals for test error": the K-fold mean
   is asymptotically normal around the average performance of the K fold models, with the
   variance of an independent sample, for stable learners such as a regularised logistic
   regression).
2. Candidate thresholds are the calibration scores, thinned to at most ``max_candidates``
   evenly spaced by count, ordered from strictest (nothing on the cheap side) to loosest. The
   order depends on the scores only, never on correctness, so it is fixed before any test.
3. For each candidate the null hypothesis is "the quality ratio
   ``Q(t) = E[correct of the policy] / E[correct of strong-only]`` is below ``quality``". It is
   rejected when a one-sided lower confidence bound on ``Q(t)`` at level ``1 - delta`` is at
   least ``quality``. The bound is a **paired percentile bootstrap**: prompts are resampled
   whole, so the policy's and the strong model's correctness on the same prompt move together
   (they are equal on most prompts, which is why the bound is tight), and the ratio is
   recomputed on each resample; the bound is the ``delta`` quantile. ``Q`` is a smooth function
   of two means of bounded per-prompt variables, so the bootstrap quantile is consistent and its
   one-sided coverage error shrinks as ``n ** -0.5``; with the ~2,000 prompts of a RouterBench
   train split it is a fraction of a point (the property test in ``tests/precall`` checks the
   coverage on synthetic data). Clopper-Pearson is exact for one proportion, but the ratio has
   two correlated proportions; bounding each with Clopper-Pearson and a union bound ignores
   their pairing and costs about three times the margin here.
4. Walk the sequence and stop at the first candidate whose null is not rejected. Fixed-sequence
   testing controls the family-wise error at ``delta`` without a Bonferroni split (a hypothesis
   is tested only after every earlier one was rejected), so with probability at least
   ``1 - delta`` every passed candidate meets the target on new prompts; the fit picks the
   passed candidate with the largest calibration saving. When several policies (variants) are
   fitted on the same data and the best is kept, each runs at ``delta / m`` (union bound).

What the guarantee covers: by default, the expected quality on new prompts drawn like the
calibration ones, which is what a router serving unbounded traffic needs. A finite test set's
own figure scatters around that expectation (a standard error of about 0.8 point for ~800
RouterBench prompts), so it can dip below the target by that scatter even when the guarantee
holds. ``sample_size=M`` certifies the
figure measured on a fresh sample of ``M`` prompts instead: that figure differs from the
calibration estimate by the calibration error plus the sample's own, independent, so the
variance is ``sigma^2 (1/n + 1/M)``; resampling ``n M / (n + M)`` prompts per bootstrap draw
gives that spread. The bound is correspondingly looser.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tiergate.errors import TiergateError

FloatArray = NDArray[np.float64]
DEFAULT_BOOTSTRAPS = 2000
DEFAULT_CANDIDATES = 200
# Bootstrap weights are drawn in blocks of about this many cells to bound memory on big data.
_BLOCK_CELLS = 4_000_000


class ThresholdError(TiergateError, ValueError):
    """Calibration data that cannot support a quality threshold."""


@dataclass(frozen=True, slots=True)
class Certificate:
    """The fitted threshold and what the calibration data says about it.

    ``threshold``: send to the cheap side when the score is at least this (``inf``: never).
    ``quality`` and ``saving`` are calibration point estimates; ``quality_lower`` is the
    bootstrap bound the test passed with. ``tested`` counts the candidates walked.
    ``sample_size`` is None for the expected quality on new prompts, or the size of the fresh
    sample whose measured quality the bound covers.
    """

    threshold: float
    cheap_side_share: float
    quality: float
    quality_lower: float
    saving: float
    target: float
    delta: float
    tested: int
    candidates: int
    sample_size: int | None = None

    @property
    def certified_any(self) -> bool:
        return self.cheap_side_share > 0.0

    def summary(self) -> dict[str, float | int | None]:
        """The calibration figures for a report (JSON-ready: no threshold here, see callers)."""
        return {
            "saving": self.saving,
            "quality_vs_strong": self.quality,
            "quality_lower_bound": self.quality_lower,
            "cheap_side_share": self.cheap_side_share,
            "delta": self.delta,
            "sample_size": self.sample_size,
        }


def fit_threshold(
    scores: NDArray[np.floating],
    strong_correct: NDArray[np.floating],
    strong_cost: NDArray[np.floating],
    cheap_correct: NDArray[np.floating],
    cheap_cost: NDArray[np.floating],
    *,
    quality: float,
    delta: float,
    bootstraps: int = DEFAULT_BOOTSTRAPS,
    max_candidates: int = DEFAULT_CANDIDATES,
    sample_size: int | None = None,
    seed: int = 0,
) -> Certificate:
    """Fit the threshold as the module docstring says.

    ``cheap_correct`` and ``cheap_cost`` are what each prompt's answer scores and costs when it
    takes the cheap side of the policy (for a cascade: the served answer and every call made);
    ``strong_*`` when it goes straight to the strong model.
    """
    if not 0.0 < quality <= 1.0:
        raise ThresholdError(f"quality target must be in (0, 1], got {quality}")
    if not 0.0 < delta < 1.0:
        raise ThresholdError(f"delta must be in (0, 1), got {delta}")
    if sample_size is not None and sample_size < 1:
        raise ThresholdError(f"sample_size must be at least 1, got {sample_size}")
    score = np.asarray(scores, dtype=np.float64)
    arrays = [np.asarray(a, dtype=np.float64) for a in (strong_correct, strong_cost)]
    arrays += [np.asarray(a, dtype=np.float64) for a in (cheap_correct, cheap_cost)]
    if any(a.shape != score.shape for a in arrays) or score.ndim != 1:
        raise ThresholdError("scores and outcomes must be 1-d arrays of one length")
    if score.size == 0:
        raise ThresholdError("no calibration prompts")
    order = np.argsort(-score, kind="stable")
    ranked = score[order]
    s_correct, s_cost, c_correct, c_cost = (a[order] for a in arrays)
    if s_correct.sum() <= 0:
        raise ThresholdError("the strong model is never correct on the calibration prompts")

    counts = _candidate_counts(ranked, max_candidates)
    point_quality = _quality(c_correct, s_correct, counts)
    cost_cheap = np.concatenate(([0.0], np.cumsum(c_cost)))[counts]
    cost_strong_rest = s_cost.sum() - np.concatenate(([0.0], np.cumsum(s_cost)))[counts]
    saving = 1.0 - (cost_cheap + cost_strong_rest) / s_cost.sum()
    n = score.size
    draws = n if sample_size is None else max(1, round(n * sample_size / (n + sample_size)))
    lower = _bootstrap_lower(c_correct, s_correct, counts, delta, bootstraps, draws, seed)

    passed = lower >= quality
    # Candidate 0 (nothing on the cheap side) has quality exactly 1 and always passes.
    tested = len(counts) if passed.all() else int(np.argmin(passed)) + 1
    walked = np.arange(len(counts)) < tested
    eligible = walked & passed
    best = int(np.argmax(np.where(eligible, saving, -np.inf)))
    chosen = int(counts[best])
    return Certificate(
        threshold=float("inf") if chosen == 0 else float(ranked[chosen - 1]),
        cheap_side_share=chosen / score.size,
        quality=float(point_quality[best]),
        quality_lower=float(lower[best]),
        saving=float(saving[best]),
        target=quality,
        delta=delta,
        tested=tested,
        candidates=len(counts),
        sample_size=sample_size,
    )


def _candidate_counts(ranked: FloatArray, max_candidates: int) -> NDArray[np.intp]:
    """How many top-ranked prompts each candidate sends cheap: 0, then only at score changes.

    A cut inside a run of equal scores cannot be expressed as a threshold, so cuts sit where the
    score drops; they are thinned evenly by count and always include 0 and everything.
    """
    n = ranked.size
    drops = np.flatnonzero(ranked[:-1] > ranked[1:]) + 1
    cuts = np.concatenate(([0], drops, [n])).astype(np.intp)
    if cuts.size > max_candidates:
        wanted = np.linspace(0, n, max_candidates)
        positions = np.searchsorted(cuts, wanted)
        cuts = np.unique(np.concatenate(([0], cuts[np.minimum(positions, cuts.size - 1)], [n])))
    return cuts


def _quality(
    cheap_correct: FloatArray, strong_correct: FloatArray, counts: NDArray[np.intp]
) -> FloatArray:
    cheap_top = np.concatenate(([0.0], np.cumsum(cheap_correct)))[counts]
    strong_cum = np.concatenate(([0.0], np.cumsum(strong_correct)))
    total = strong_cum[-1]
    return np.asarray((cheap_top + total - strong_cum[counts]) / total)


def _bootstrap_lower(
    cheap_correct: FloatArray,
    strong_correct: FloatArray,
    counts: NDArray[np.intp],
    delta: float,
    bootstraps: int,
    draws: int,
    seed: int,
) -> FloatArray:
    """The ``delta`` quantile of the paired-bootstrap quality ratio at every candidate.

    Each resample draws ``draws`` prompts with replacement (``n`` for the plain bootstrap).
    """
    n = cheap_correct.size
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // n)
    ratios: list[FloatArray] = []
    uniform = np.full(n, 1.0 / n)
    for start in range(0, bootstraps, block):
        size = min(block, bootstraps - start)
        weights = rng.multinomial(draws, uniform, size=size).astype(np.float64)
        zero = np.zeros((size, 1))
        cheap_cum = np.concatenate((zero, np.cumsum(weights * cheap_correct, axis=1)), axis=1)
        strong_cum = np.concatenate((zero, np.cumsum(weights * strong_correct, axis=1)), axis=1)
        total = strong_cum[:, -1:]
        # A resample where the strong model is never right has no ratio; count it as a failure.
        safe_total = np.where(total > 0, total, 1.0)
        ratio = (cheap_cum[:, counts] + total - strong_cum[:, counts]) / safe_total
        ratios.append(np.where(total > 0, ratio, 0.0))
    return np.asarray(np.quantile(np.concatenate(ratios), delta, axis=0))
