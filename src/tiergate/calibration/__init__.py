"""Confidence calibration and error-budget thresholds. Pure: numpy/scipy, no I/O.

- :class:`Calibrator`: named features -> calibrated P(correct); ``fit``, ``predict``,
  ``to_dict`` / ``from_dict``.
- :func:`fit_threshold` (scores, correct, budget, delta=0.05) -> :class:`ThresholdResult`: the
  lowest threshold whose accepted error is within budget with a Clopper-Pearson / Learn-then-Test
  guarantee, or accept nothing.
- :func:`fit_thresholds_per_label` -> :class:`PerLabelThresholds`: the same per answered label
  where the label has enough calibration data, the global threshold elsewhere.
"""

from tiergate.calibration.bounds import clopper_pearson_upper, min_trials_for_budget
from tiergate.calibration.calibrator import Calibrator
from tiergate.calibration.thresholds import (
    ACCEPT_NOTHING,
    PerLabelThresholds,
    ThresholdResult,
    fit_threshold,
    fit_thresholds_per_label,
)

__all__ = [
    "ACCEPT_NOTHING",
    "Calibrator",
    "PerLabelThresholds",
    "ThresholdResult",
    "clopper_pearson_upper",
    "fit_threshold",
    "fit_thresholds_per_label",
    "min_trials_for_budget",
]
