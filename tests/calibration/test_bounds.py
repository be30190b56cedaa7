from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tiergate.calibration import clopper_pearson_upper, min_trials_for_budget


@given(
    trials=st.integers(min_value=1, max_value=5000),
    error_fraction=st.floats(min_value=0, max_value=1),
    delta=st.floats(min_value=0.001, max_value=0.5),
)
def test_upper_bound_is_at_least_the_empirical_error(
    trials: int, error_fraction: float, delta: float
) -> None:
    errors = round(trials * error_fraction)
    bound = clopper_pearson_upper(errors, trials, delta)
    assert errors / trials <= bound <= 1.0


@given(
    trials=st.integers(min_value=2, max_value=2000),
    errors=st.integers(min_value=0, max_value=50),
)
def test_bound_grows_with_errors_and_confidence(trials: int, errors: int) -> None:
    errors = min(errors, trials - 1)
    assert clopper_pearson_upper(errors, trials, 0.05) <= clopper_pearson_upper(
        errors + 1, trials, 0.05
    )
    assert clopper_pearson_upper(errors, trials, 0.10) <= clopper_pearson_upper(
        errors, trials, 0.01
    )


def test_known_values() -> None:
    # Zero errors in n trials: the bound is 1 - delta ** (1 / n) ("rule of three" for large n).
    assert clopper_pearson_upper(0, 300, 0.05) == pytest.approx(1 - 0.05 ** (1 / 300))
    assert clopper_pearson_upper(0, 0, 0.05) == 1.0
    assert clopper_pearson_upper(10, 10, 0.05) == 1.0


@given(
    budget=st.floats(min_value=0.001, max_value=0.5),
    delta=st.floats(min_value=0.001, max_value=0.5),
)
def test_min_trials_is_exactly_where_zero_errors_first_certify(budget: float, delta: float) -> None:
    needed = min_trials_for_budget(budget, delta)
    assert clopper_pearson_upper(0, needed, delta) <= budget * (1 + 1e-9)
    if needed > 1:
        assert clopper_pearson_upper(0, needed - 1, delta) > budget


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        clopper_pearson_upper(5, 3, 0.05)
    with pytest.raises(ValueError):
        clopper_pearson_upper(0, 3, 1.5)
