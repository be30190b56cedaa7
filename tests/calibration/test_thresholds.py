from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from tiergate.calibration import (
    PerLabelThresholds,
    ThresholdResult,
    clopper_pearson_upper,
    fit_threshold,
    fit_thresholds_per_label,
    min_trials_for_budget,
)


def synthetic(size: int, seed: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Scores whose true P(correct) equals the score: a perfectly calibrated tier."""
    rng = np.random.default_rng(seed)
    scores = rng.beta(5, 1, size)
    return scores, rng.random(size) < scores


calibration_data = st.builds(
    synthetic, st.integers(min_value=0, max_value=3000), st.integers(min_value=0, max_value=10**6)
)
budgets = st.sampled_from([0.01, 0.02, 0.05, 0.1, 0.2])


@settings(max_examples=60, deadline=None)
@given(data=calibration_data, budget=budgets)
def test_result_is_certified_and_consistent(
    data: tuple[NDArray[np.float64], NDArray[np.bool_]], budget: float
) -> None:
    scores, correct = data
    result = fit_threshold(scores, correct, budget, 0.05)
    if not result.accepts_anything:
        assert result.accepted == 0 and result.accepted_share == 0.0
        assert not result.accepts(scores).any()
        return
    accepted = result.accepts(scores)
    assert accepted.sum() == result.accepted
    assert (~correct[accepted]).sum() == result.errors
    assert result.empirical_error <= result.upper_bound <= budget
    assert result.upper_bound == pytest.approx(
        clopper_pearson_upper(result.errors, result.accepted, 0.05)
    )


@settings(max_examples=60, deadline=None)
@given(data=calibration_data, budget=budgets, looser=st.sampled_from([0.0, 0.01, 0.05, 0.2]))
def test_a_looser_delta_never_accepts_less(
    data: tuple[NDArray[np.float64], NDArray[np.bool_]], budget: float, looser: float
) -> None:
    scores, correct = data
    start = min_trials_for_budget(budget, 0.01)
    strict = fit_threshold(scores, correct, budget, 0.01, start_accepted=start)
    loose = fit_threshold(scores, correct, budget, 0.01 + looser, start_accepted=start)
    assert loose.accepted_share >= strict.accepted_share
    assert loose.threshold <= strict.threshold


@settings(max_examples=60, deadline=None)
@given(data=calibration_data, budget=budgets)
def test_a_looser_budget_never_accepts_less_from_the_same_start(
    data: tuple[NDArray[np.float64], NDArray[np.bool_]], budget: float
) -> None:
    scores, correct = data
    start = min_trials_for_budget(budget, 0.05)
    results = [
        fit_threshold(scores, correct, b, 0.05, start_accepted=start)
        for b in (budget, budget * 1.5, budget * 2)
    ]
    shares = [r.accepted_share for r in results]
    thresholds = [r.threshold for r in results]
    assert shares == sorted(shares)
    assert thresholds == sorted(thresholds, reverse=True)


def test_guarantee_holds_out_of_sample() -> None:
    # Over many calibration draws, the true accepted error exceeds the budget in at most about
    # delta of them. The truth is computed exactly for scores ~ Beta(5, 1), P(wrong | s) = 1 - s.
    budget, delta, violations, trials = 0.05, 0.1, 0, 200

    def true_error(threshold: float) -> float:
        # E[1 - s | s >= t] for Beta(5, 1): density 5 s^4 on [0, 1].
        mass = 1 - threshold**5
        mean_s = (5 / 6) * (1 - threshold**6) / mass
        return 1 - mean_s

    for seed in range(trials):
        scores, correct = synthetic(2000, seed)
        result = fit_threshold(scores, correct, budget, delta)
        if result.accepts_anything and true_error(result.threshold) > budget:
            violations += 1
    assert violations <= delta * trials


def test_nothing_meets_an_impossible_budget() -> None:
    scores = np.linspace(0, 1, 1000)
    result = fit_threshold(scores, np.zeros(1000, dtype=bool), 0.05)
    assert result.threshold == math.inf
    assert result.to_dict()["threshold"] is None
    assert not result.accepts([1.0, 2.0]).any()


def test_too_little_data_accepts_nothing_even_when_perfect() -> None:
    result = fit_threshold(np.ones(100), np.ones(100, dtype=bool), 0.01)
    assert not result.accepts_anything
    assert fit_threshold(np.ones(400), np.ones(400, dtype=bool), 0.01).accepted_share == 1.0


def test_ties_are_accepted_together() -> None:
    scores = np.array([0.9] * 400 + [0.5] * 400)
    correct = np.array([True] * 400 + [False] * 400)
    result = fit_threshold(scores, correct, 0.05)
    assert result.threshold == 0.9 and result.accepted == 400


def test_threshold_result_round_trips_through_json() -> None:
    scores, correct = synthetic(2000, 1)
    result = fit_threshold(scores, correct, 0.1)
    assert ThresholdResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_per_label_thresholds_fit_where_data_allows() -> None:
    rng = np.random.default_rng(0)
    easy = rng.random(1500) < 0.999  # a label that is nearly always right
    hard = rng.random(1500) < 0.8
    scores = np.concatenate([rng.random(1500) * 0.2 + 0.8, rng.random(1500)])
    correct = np.concatenate([easy, hard & (scores[1500:] > 0.3)])
    labels = ["easy"] * 1500 + ["hard"] * 1500 + []
    rare_scores = np.append(scores, [0.99] * 10)
    rare_correct = np.append(correct, [True] * 10)
    fitted = fit_thresholds_per_label(
        rare_scores, rare_correct, [*labels, *["rare"] * 10], 0.02, 0.05, min_count=1000
    )
    assert set(fitted.per_label) == {"easy", "hard"}
    assert fitted.threshold_for("easy") < fitted.threshold_for("hard")
    assert fitted.threshold_for("rare") == fitted.global_result.threshold
    accepted = fitted.accepts([0.9, 0.9], ["easy", "hard"])
    assert accepted.tolist() == [True, fitted.threshold_for("hard") <= 0.9]
    assert PerLabelThresholds.from_dict(json.loads(json.dumps(fitted.to_dict()))) == fitted


def test_mismatched_inputs_are_rejected() -> None:
    with pytest.raises(ValueError):
        fit_threshold([0.1, 0.2], [True], 0.05)
    with pytest.raises(ValueError):
        fit_thresholds_per_label([0.1, 0.2], [True, False], ["a"], 0.05)
