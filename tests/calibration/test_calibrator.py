from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tiergate.calibration import Calibrator


def noisy_confidence(size: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A stated confidence that overclaims, and agreement that matters (a logistic truth)."""
    rng = np.random.default_rng(seed)
    stated = rng.uniform(0.5, 1.0, size)
    agreement = rng.random(size) < 0.7
    true_probability = 1 / (1 + np.exp(-(8 * stated - 5.5 + 1.5 * agreement)))
    correct = rng.random(size) < true_probability
    return {"stated_confidence": stated, "agrees_with_local": agreement.astype(float)}, correct


def test_calibrator_matches_observed_frequencies() -> None:
    features, correct = noisy_confidence(20000, 0)
    calibrator = Calibrator.fit(features, correct)
    probabilities = calibrator.predict(features)
    bins = np.digitize(probabilities, np.quantile(probabilities, np.linspace(0, 1, 11)[1:-1]))
    for b in range(10):
        in_bin = bins == b
        assert abs(probabilities[in_bin].mean() - correct[in_bin].mean()) < 0.03
    # Agreement with the local tier raises P(correct) at equal stated confidence.
    both = calibrator.predict({"stated_confidence": [0.9, 0.9], "agrees_with_local": [1.0, 0.0]})
    assert both[0] > both[1]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000))
def test_probability_ordering_follows_a_monotone_feature(seed: int) -> None:
    features, correct = noisy_confidence(2000, seed)
    calibrator = Calibrator.fit({"stated_confidence": features["stated_confidence"]}, correct)
    grid = np.linspace(0.5, 1.0, 11)
    predicted = calibrator.predict({"stated_confidence": grid})
    assert np.all(np.diff(predicted) > 0)
    assert np.all((predicted > 0) & (predicted < 1))


def test_array_input_with_names_and_json_round_trip() -> None:
    features, correct = noisy_confidence(3000, 1)
    names = ["stated_confidence", "agrees_with_local"]
    matrix = np.column_stack([features[n] for n in names])
    from_array = Calibrator.fit(matrix, correct, names=names)
    from_mapping = Calibrator.fit(features, correct)
    np.testing.assert_allclose(from_array.predict(matrix), from_mapping.predict(features))
    restored = Calibrator.from_dict(json.loads(json.dumps(from_array.to_dict())))
    assert restored == from_array
    np.testing.assert_allclose(restored.predict(features), from_array.predict(matrix))


def test_perfect_separation_stays_finite() -> None:
    feature = np.r_[np.zeros(50), np.ones(50)]
    calibrator = Calibrator.fit({"x": feature}, feature > 0.5)
    predicted = calibrator.predict({"x": [0.0, 1.0]})
    assert predicted[0] < 0.1 < 0.9 < predicted[1]
    assert np.isfinite(calibrator.weights).all()


def test_errors_are_clear() -> None:
    calibrator = Calibrator.fit({"a": [0.1, 0.9, 0.5]}, [False, True, True])
    with pytest.raises(KeyError, match="missing calibration features"):
        calibrator.predict({"b": [0.1]})
    with pytest.raises(ValueError, match="needs names"):
        Calibrator.fit(np.zeros((3, 1)), [True, False, True])
    with pytest.raises(ValueError, match="same number of rows"):
        Calibrator.fit({"a": [0.1, 0.2]}, [True])
