"""Features -> calibrated probability that an answer is correct. Pure: numpy/scipy only.

A regularised logistic regression over named features, generic so every tier can use it: the
local tier passes its probability, margin, neighbour vote share and neighbour similarity; a
Claude tier passes its stated confidence, the local model's probability for the label it chose
and whether it agrees with the local top choice. Features are standardised with the fitting
data's mean and spread, so the L2 penalty treats them alike and the fit is stable.

Usage::

    calibrator = Calibrator.fit({"prob": p, "vote_share": v}, correct)
    p_correct = calibrator.predict({"prob": p_new, "vote_share": v_new})
    Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import expit, log_expit

FeatureInput = Mapping[str, ArrayLike] | ArrayLike


@dataclass(frozen=True, slots=True)
class Calibrator:
    """Logistic map from named features to P(correct); build with :meth:`fit`."""

    feature_names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    intercept: float

    @classmethod
    def fit(
        cls,
        features: FeatureInput,
        correct: ArrayLike,
        *,
        names: Sequence[str] | None = None,
        l2: float = 1e-3,
    ) -> Calibrator:
        """Fit on features (a name -> column mapping, or a 2-D array plus ``names``).

        ``l2`` is the penalty per example on the standardised weights; it keeps the fit finite
        when a feature separates right from wrong perfectly on the calibration data.
        """
        feature_names, matrix = _as_matrix(features, names)
        target = np.asarray(correct, dtype=np.float64).ravel()
        if target.shape[0] != matrix.shape[0]:
            raise ValueError("features and correct must have the same number of rows")
        if target.size == 0:
            raise ValueError("cannot fit a calibrator on no data")
        mean = matrix.mean(axis=0)
        scale = matrix.std(axis=0)
        scale[scale == 0] = 1.0
        standardised = (matrix - mean) / scale
        rows = standardised.shape[0]
        design = np.hstack([standardised, np.ones((rows, 1))])

        def loss_and_gradient(params: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            logits = design @ params
            # -log-likelihood via log_expit stays finite for large |logits|.
            nll = -(target * log_expit(logits) + (1 - target) * log_expit(-logits)).sum()
            penalty = 0.5 * l2 * rows * float(params[:-1] @ params[:-1])
            residual = expit(logits) - target
            gradient = design.T @ residual
            gradient[:-1] += l2 * rows * params[:-1]
            return (float(nll) + penalty) / rows, gradient / rows

        start = np.zeros(design.shape[1])
        start[-1] = _logit(float(np.clip(target.mean(), 1e-6, 1 - 1e-6)))
        solution = minimize(loss_and_gradient, start, jac=True, method="L-BFGS-B")
        params = solution.x
        return cls(
            feature_names=feature_names,
            mean=tuple(float(x) for x in mean),
            scale=tuple(float(x) for x in scale),
            weights=tuple(float(x) for x in params[:-1]),
            intercept=float(params[-1]),
        )

    def predict(self, features: FeatureInput) -> NDArray[np.float64]:
        """Calibrated P(correct) for each row."""
        _, matrix = _as_matrix(features, self.feature_names, expected=self.feature_names)
        standardised = (matrix - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.asarray(expit(standardised @ np.asarray(self.weights) + self.intercept))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "logistic",
            "feature_names": list(self.feature_names),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        if data.get("kind", "logistic") != "logistic":
            raise ValueError(f"unknown calibrator kind {data.get('kind')!r}")
        names = tuple(str(n) for n in data["feature_names"])
        columns = (data["mean"], data["scale"], data["weights"])
        if any(len(column) != len(names) for column in columns):
            raise ValueError("calibrator dict has columns of different lengths")
        return cls(
            feature_names=names,
            mean=tuple(float(x) for x in data["mean"]),
            scale=tuple(float(x) for x in data["scale"]),
            weights=tuple(float(x) for x in data["weights"]),
            intercept=float(data["intercept"]),
        )


def _logit(probability: float) -> float:
    return float(np.log(probability / (1 - probability)))


def _as_matrix(
    features: FeatureInput,
    names: Sequence[str] | None,
    *,
    expected: Sequence[str] | None = None,
) -> tuple[tuple[str, ...], NDArray[np.float64]]:
    if isinstance(features, Mapping):
        wanted = tuple(expected) if expected is not None else tuple(features)
        missing = [name for name in wanted if name not in features]
        if missing:
            raise KeyError(f"missing calibration features: {missing}")
        columns = [np.asarray(features[name], dtype=np.float64).ravel() for name in wanted]
        if len({column.shape[0] for column in columns}) > 1:
            raise ValueError("feature columns have different lengths")
        matrix = np.column_stack(columns) if columns else np.empty((0, 0))
        return wanted, matrix
    matrix = np.asarray(features, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError("a feature array must be 2-D (rows x features)")
    if names is None:
        raise ValueError("a feature array needs names")
    if len(names) != matrix.shape[1]:
        raise ValueError(f"{len(names)} names for {matrix.shape[1]} feature columns")
    if np.isnan(matrix).any():
        raise ValueError("features contain NaN")
    return tuple(names), matrix
