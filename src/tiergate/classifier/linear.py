"""Multinomial logistic regression over embeddings, kept as plain numpy weights.

scikit-learn fits it; serving and saving need only the weight matrix, so a saved model loads
without unpickling anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import softmax

DEFAULT_C = 20.0
# The bias of a label a model never saw: its probability is nil until a refit.
UNREACHABLE_BIAS = -1e3


@dataclass(frozen=True, slots=True)
class LinearModel:
    weights: NDArray[np.float64]  # (dimension, labels)
    bias: NDArray[np.float64]  # (labels,)

    def probabilities(self, vectors: NDArray[np.float32]) -> NDArray[np.float64]:
        logits = vectors.astype(np.float64) @ self.weights + self.bias
        return np.asarray(softmax(logits, axis=1))

    def with_unreachable_label(self) -> LinearModel:
        """The same model with one more label, which it never predicts (until a refit)."""
        return LinearModel(
            np.hstack([self.weights, np.zeros((self.weights.shape[0], 1))]),
            np.append(self.bias, UNREACHABLE_BIAS),
        )


def fit_linear(
    vectors: NDArray[np.float32], label_ids: NDArray[np.intp], n_labels: int, c: float = DEFAULT_C
) -> LinearModel:
    """Fit on all labels 0..n_labels-1; a label absent from this data gets a very low bias."""
    from sklearn.linear_model import LogisticRegression

    present = np.unique(label_ids)
    if present.size == 1:
        # A one-label problem has nothing to separate; predict that label with certainty.
        return LinearModel(*silent_weights(vectors.shape[1], n_labels, present))
    fitted = LogisticRegression(C=c, max_iter=1000).fit(vectors, label_ids)
    return LinearModel(*label_weights(fitted, vectors.shape[1], n_labels))


def silent_weights(
    features: int, n_labels: int, present: NDArray[np.intp]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Weights that say nothing: the ``present`` labels equally likely, the others unreachable."""
    bias = np.full(n_labels, UNREACHABLE_BIAS)
    bias[present] = 0.0
    return np.zeros((features, n_labels)), bias


def label_weights(
    fitted: Any, features: int, n_labels: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A fitted sklearn LogisticRegression's weights as (features, n_labels) and bias, with
    labels it never saw left unreachable (bias -1e3)."""
    weights = np.zeros((features, n_labels))
    bias = np.full(n_labels, UNREACHABLE_BIAS)
    coefficients = np.asarray(fitted.coef_, dtype=np.float64)
    intercepts = np.asarray(fitted.intercept_, dtype=np.float64)
    classes = np.asarray(fitted.classes_, dtype=np.intp)
    if classes.size == 2:
        # sklearn stores one row for two classes: logit(class 1) - logit(class 0).
        coefficients = np.vstack([-coefficients[0] / 2, coefficients[0] / 2])
        intercepts = np.array([-intercepts[0] / 2, intercepts[0] / 2])
    weights[:, classes] = coefficients.T
    bias[classes] = intercepts
    return weights, bias
