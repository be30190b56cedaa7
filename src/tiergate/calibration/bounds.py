"""Exact binomial confidence bounds (Clopper-Pearson). Pure: numpy/scipy only."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaincinv


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
    return float(betaincinv(errors + 1, trials - errors, 1.0 - delta))


def clopper_pearson_upper_many(
    errors: ArrayLike, trials: ArrayLike, delta: float
) -> NDArray[np.float64]:
    """:func:`clopper_pearson_upper` for arrays of counts at once (1 where nothing is known)."""
    k, n = np.broadcast_arrays(
        np.asarray(errors, dtype=np.float64), np.asarray(trials, dtype=np.float64)
    )
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("need 0 <= errors <= trials")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    known = (n > 0) & (k < n)
    bounds = np.ones(k.shape)
    bounds[known] = betaincinv(k[known] + 1, n[known] - k[known], 1.0 - delta)
    return bounds


def clopper_pearson_lower_many(
    successes: ArrayLike, trials: ArrayLike, delta: float
) -> NDArray[np.float64]:
    """:func:`clopper_pearson_lower` for arrays of counts at once (0 where nothing is known)."""
    k, n = np.broadcast_arrays(
        np.asarray(successes, dtype=np.float64), np.asarray(trials, dtype=np.float64)
    )
    lower = 1.0 - clopper_pearson_upper_many(n - k, n, delta)
    return np.where((n > 0) & (k > 0), lower, 0.0)


def clopper_pearson_lower(successes: int, trials: int, delta: float) -> float:
    """Lower bound on a proportion that holds with probability at least ``1 - delta``.

    One-sided Clopper-Pearson, the mirror of :func:`clopper_pearson_upper`; no trials or no
    successes give 0.
    """
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0 or successes == 0:
        return 0.0
    return 1.0 - clopper_pearson_upper(trials - successes, trials, delta)


def min_trials_for_budget(budget: float, delta: float) -> int:
    """Fewest trials at which zero errors gives a Clopper-Pearson bound within ``budget``.

    With fewer accepted calibration examples no threshold can be certified, whatever the data.
    """
    if not 0.0 < budget < 1.0:
        raise ValueError(f"budget must be in (0, 1), got {budget}")
    # Zero errors: the bound is 1 - delta ** (1 / n), within budget once n >= log delta / log(1-b).
    # The float ratio can land a hair above an exact integer, so the ceiling is nudged back down.
    return max(1, math.ceil(math.log(delta) / math.log1p(-budget) - 1e-9))
