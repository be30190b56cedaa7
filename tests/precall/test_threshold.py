"""The quality threshold: the certified bound holds out of sample, and the walk behaves."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from tiergate.precall.threshold import ThresholdError, fit_threshold

STRONG_ACCURACY = 0.9


def cheap_accuracy(score: NDArray[np.float64]) -> NDArray[np.float64]:
    """The synthetic truth: the cheap model is right with chance 0.5 + 0.45 * score."""
    return 0.5 + 0.45 * score


def true_quality(threshold: float) -> float:
    """Exact quality ratio of "cheap when score >= t" with scores uniform on 0..1."""
    t = min(max(threshold, 0.0), 1.0)
    cheap_part = 0.5 * (1 - t) + 0.225 * (1 - t * t)
    return (cheap_part + STRONG_ACCURACY * t) / STRONG_ACCURACY


def sample(rng: np.random.Generator, n: int) -> tuple[NDArray[np.float64], ...]:
    score = rng.random(n)
    cheap = (rng.random(n) < cheap_accuracy(score)).astype(float)
    strong = (rng.random(n) < STRONG_ACCURACY).astype(float)
    return score, strong, np.ones(n), cheap, np.full(n, 0.1)


def test_the_certified_quality_holds_out_of_sample_in_most_seeds() -> None:
    """At delta 0.1 the true quality falls below target in at most ~10% of seeds; allow 20%."""
    misses, shares = 0, []
    seeds = 100
    for seed in range(seeds):
        score, strong, strong_cost, cheap, cheap_cost = sample(np.random.default_rng(seed), 1500)
        certificate = fit_threshold(
            score,
            strong,
            strong_cost,
            cheap,
            cheap_cost,
            quality=0.95,
            delta=0.1,
            bootstraps=400,
            seed=seed,
        )
        misses += true_quality(certificate.threshold) < 0.95
        shares.append(certificate.cheap_side_share)
    assert misses <= 0.2 * seeds
    # Not vacuous: the truth allows about 56% on the cheap side; the fit gets most of it.
    assert 0.35 < float(np.mean(shares)) < 0.56


def test_a_fresh_samples_figure_is_covered_when_asked() -> None:
    """With sample_size=M, the figure measured on M new prompts meets the target in most seeds."""
    misses, plain_shares, sample_shares = 0, [], []
    seeds = 60
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        score, strong, strong_cost, cheap, cheap_cost = sample(rng, 1500)
        arguments = (score, strong, strong_cost, cheap, cheap_cost)
        plain = fit_threshold(*arguments, quality=0.95, delta=0.1, bootstraps=400, seed=seed)
        certificate = fit_threshold(
            *arguments, quality=0.95, delta=0.1, bootstraps=400, sample_size=600, seed=seed
        )
        new_score, new_strong, _, new_cheap, _ = sample(rng, 600)
        served = np.where(new_score >= certificate.threshold, new_cheap, new_strong)
        misses += served.sum() / new_strong.sum() < 0.95
        plain_shares.append(plain.cheap_side_share)
        sample_shares.append(certificate.cheap_side_share)
        assert certificate.sample_size == 600
    assert misses <= 0.2 * seeds
    assert np.mean(sample_shares) < np.mean(plain_shares)  # the looser guarantee costs share


def test_a_cheap_model_that_is_always_right_takes_everything() -> None:
    n = 500
    score = np.linspace(0, 1, n)
    certificate = fit_threshold(
        score,
        np.ones(n),
        np.ones(n),
        np.ones(n),
        np.full(n, 0.1),
        quality=0.95,
        delta=0.05,
        bootstraps=200,
    )
    assert certificate.cheap_side_share == 1.0
    assert certificate.threshold == pytest.approx(0.0)
    assert certificate.saving == pytest.approx(0.9)
    assert certificate.quality_lower == 1.0


def test_a_cheap_model_that_is_always_wrong_takes_at_most_the_budget() -> None:
    """Each prompt sent cheap costs 1/n of quality: at a 95% target at most 5% may go."""
    n = 500
    score = np.linspace(0, 1, n)
    arguments = (score, np.ones(n), np.ones(n), np.zeros(n), np.full(n, 0.1))
    loose = fit_threshold(*arguments, quality=0.95, delta=0.05, bootstraps=200)
    assert 0.0 < loose.cheap_side_share <= 0.05
    strict = fit_threshold(*arguments, quality=1.0, delta=0.05, bootstraps=200)
    assert strict.cheap_side_share == 0.0
    assert strict.threshold == float("inf")
    assert not strict.certified_any
    assert strict.quality == 1.0
    assert strict.tested == 2  # "nothing" passes, the next candidate fails and ends the walk


def test_tied_scores_are_never_split() -> None:
    """A threshold is a score, so prompts with equal scores go the same way."""
    score = np.repeat([0.9, 0.5, 0.1], 200)
    cheap = np.concatenate([np.ones(200), np.ones(200), np.zeros(200)])
    certificate = fit_threshold(
        score,
        np.ones(600),
        np.ones(600),
        cheap,
        np.full(600, 0.1),
        quality=0.95,
        delta=0.05,
        bootstraps=200,
    )
    assert certificate.threshold == 0.5
    assert certificate.cheap_side_share == pytest.approx(400 / 600)


def test_graded_correctness_scores_are_accepted() -> None:
    rng = np.random.default_rng(3)
    n = 800
    score = rng.random(n)
    certificate = fit_threshold(
        score,
        np.full(n, 0.8),
        np.ones(n),
        0.6 + 0.3 * score,
        np.full(n, 0.1),
        quality=0.95,
        delta=0.05,
        bootstraps=200,
    )
    # The cheap score clears 0.95 * 0.8 = 0.76 where 0.6 + 0.3 s >= 0.76 on average over
    # the cheap side, so a strict share goes cheap; the bound is below the point estimate.
    assert 0.0 < certificate.cheap_side_share < 1.0
    assert certificate.quality_lower <= certificate.quality


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"quality": 0.0}, "quality target"),
        ({"quality": 1.2}, "quality target"),
        ({"delta": 1.0}, "delta"),
        ({"sample_size": 0}, "sample_size"),
    ],
)
def test_bad_settings_are_refused(change: dict[str, float], message: str) -> None:
    settings: dict[str, float] = {"quality": 0.95, "delta": 0.05}
    settings.update(change)
    ones = np.ones(10)
    with pytest.raises(ThresholdError, match=message):
        fit_threshold(ones, ones, ones, ones, ones, **settings)  # type: ignore[arg-type]


def test_a_strong_model_never_right_is_refused() -> None:
    ones, zeros = np.ones(10), np.zeros(10)
    with pytest.raises(ThresholdError, match="never correct"):
        fit_threshold(ones, zeros, ones, ones, ones, quality=0.9, delta=0.1)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ThresholdError, match="one length"):
        fit_threshold(
            np.ones(10), np.ones(9), np.ones(10), np.ones(10), np.ones(10), quality=0.9, delta=0.1
        )
