"""The router's predictor: K logistic regressions, one per hash fold, kept as numpy weights.

Each prompt belongs to fold ``hash(prompt) mod K``. Model ``k`` is fitted on every training
prompt outside fold ``k`` and scores the prompts inside it: on the training data that gives
cross-fitted scores (no prompt scored by a model that saw it), and at serve time a new prompt is
scored by the model of its own fold, so its score is distributed exactly like a training
prompt's. That is what lets a threshold fitted on the training scores carry over (see
:mod:`tiergate.precall.threshold`). The same prompt always gets the same model and score.

Why logistic regression: on RouterBench it ranked prompts as well as a k-nearest-neighbour vote
and a small MLP in cross-validation on the train split (``docs/router.md``), scores in
microseconds from a weight vector, and is stable under refitting, which the cross-fitting
argument leans on. A graded target (``correct`` between 0 and 1) is fitted as a weighted pair
of rows, one labelled 1 with weight ``y`` and one labelled 0 with weight ``1 - y``.

Fitting uses scikit-learn (the ``local`` extra); scoring needs numpy only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

DEFAULT_FOLDS = 5
DEFAULT_C = 1.0
# A fold whose training part has one outcome only predicts it with this logit.
_CERTAIN_LOGIT = 12.0


def fold_of(prompt: str, folds: int) -> int:
    """The prompt's fold: a hash of its text, so it is the same at training and at serving."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % folds


@dataclass(frozen=True, slots=True)
class FoldedLogistic:
    weights: NDArray[np.float64]  # (folds, features)
    bias: NDArray[np.float64]  # (folds,)

    @property
    def folds(self) -> int:
        return int(self.bias.shape[0])

    def scores(self, features: NDArray[np.float64], prompts: Sequence[str]) -> NDArray[np.float64]:
        """P(cheap answer good enough) for each prompt, by the model of its fold."""
        fold_ids = np.array([fold_of(p, self.folds) for p in prompts], dtype=np.intp)
        logits = np.einsum("ij,ij->i", features, self.weights[fold_ids]) + self.bias[fold_ids]
        return np.asarray(expit(logits))


def cross_fit(
    features: NDArray[np.float64],
    targets: NDArray[np.float64],
    prompts: Sequence[str],
    *,
    folds: int = DEFAULT_FOLDS,
    c: float = DEFAULT_C,
) -> tuple[FoldedLogistic, NDArray[np.float64]]:
    """Fit one model per fold on the other folds; return them and the cross-fitted scores."""
    if folds < 2:
        raise ValueError(f"need at least 2 folds, got {folds}")
    from threadpoolctl import threadpool_limits

    fold_ids = np.array([fold_of(p, folds) for p in prompts], dtype=np.intp)
    weights = np.zeros((folds, features.shape[1]))
    bias = np.zeros(folds)
    # One BLAS thread: these fits are small, and threaded BLAS on a busy machine spins instead
    # of working (measured 40x slower on two shared cores).
    with threadpool_limits(limits=1):
        for fold in range(folds):
            outside = fold_ids != fold
            weights[fold], bias[fold] = _fit_one(features[outside], targets[outside], c)
    model = FoldedLogistic(weights, bias)
    return model, model.scores(features, prompts)


def _fit_one(
    features: NDArray[np.float64], targets: NDArray[np.float64], c: float
) -> tuple[NDArray[np.float64], float]:
    if targets.size == 0:
        return np.zeros(features.shape[1]), 0.0
    if np.all(targets >= 1.0) or np.all(targets <= 0.0):
        logit = _CERTAIN_LOGIT if targets[0] >= 1.0 else -_CERTAIN_LOGIT
        return np.zeros(features.shape[1]), logit
    from sklearn.linear_model import LogisticRegression

    if np.all((targets == 0.0) | (targets == 1.0)):
        fitted = LogisticRegression(C=c, max_iter=2000).fit(features, targets)
        return np.asarray(fitted.coef_[0], dtype=np.float64), float(fitted.intercept_[0])
    rows = np.vstack([features, features])
    labels = np.concatenate([np.ones(targets.size), np.zeros(targets.size)])
    sample_weight = np.concatenate([targets, 1.0 - targets])
    keep = sample_weight > 0
    fitted = LogisticRegression(C=c, max_iter=2000).fit(
        rows[keep], labels[keep], sample_weight=sample_weight[keep]
    )
    return np.asarray(fitted.coef_[0], dtype=np.float64), float(fitted.intercept_[0])
