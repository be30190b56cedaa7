"""Exact binomial confidence bounds (Clopper-Pearson). Pure: numpy/scipy only."""

from __future__ import annotations

import math

from scipy.stats import beta


def clopper_pearson_upper(errors: int, trials: int, delta: float) -> float:
    """Upper bound on an error rate that holds with probability at least ``1 - delta``.

    One-sided Clopper-Pearson: the largest p for which seeing ``errors`` or fewer in ``trials``
    still has probability ``delta``. No trials means nothing is known, so the bound is 1.
    """
    if trials < 0 or errors < 0 or errors > trials:
        raise ValueError(f"need 0 <= errors <= trials, got {errors} of {trials}")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if trials == 0 or errors == trials:
        return 1.0
    return float(beta.ppf(1.0 - delta, errors + 1, trials - errors))


def min_trials_for_budget(budget: float, delta: float) -> int:
    """Fewest trials at which zero errors gives a Clopper-Pearson bound within ``budget``.

    With fewer accepted calibration examples no threshold can be certified, whatever the data.
    """
    if not 0.0 < budget < 1.0:
        raise ValueError(f"budget must be in (0, 1), got {budget}")
    # Zero errors: the bound is 1 - delta ** (1 / n), within budget once n >= log delta / log(1-b).
    # The float ratio can land a hair above an exact integer, so the ceiling is nudged back down.
    return max(1, math.ceil(math.log(delta) / math.log1p(-budget) - 1e-9))
