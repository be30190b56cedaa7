"""The local tier's confidence features, computed in one place for serving and calibration.

Each is a column in the mapping a :class:`tiergate.calibration.Calibrator` consumes. Why these:
log-odds and margin say how sure the linear model is; the neighbour vote says whether nearby
labelled examples agree (it catches linear-model slips on confusable labels); the similarities
say whether the text resembles anything labelled at all, which is what exposes out-of-scope text.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

LOCAL_FEATURES = (
    "log_odds",
    "margin",
    "vote_share",
    "weighted_vote_share",
    "nearest_similarity",
    "label_similarity",
)
# Added when the model has a lexical view (``classifier.lexical``): how sure each view is of the
# predicted label, and whether the two views' own top labels agree.
LEXICAL_FEATURES = ("lexical_probability", "linear_probability", "views_agree")
# Sharpness of the similarity-weighted vote: similarities differ by hundredths among neighbours.
VOTE_SHARPNESS = 20.0
_EPSILON = 1e-9


def confidence_features(
    probabilities: NDArray[np.float64],
    neighbour_labels: NDArray[np.intp],
    neighbour_similarities: NDArray[np.float32],
) -> tuple[NDArray[np.intp], dict[str, NDArray[np.float64]]]:
    """Predicted label ids and the feature columns, from probabilities and k neighbours."""
    predicted = probabilities.argmax(axis=1)
    ordered = np.sort(probabilities, axis=1)
    top = ordered[:, -1]
    second = ordered[:, -2] if probabilities.shape[1] > 1 else np.zeros_like(top)
    agrees = neighbour_labels == predicted[:, None]
    similarities = neighbour_similarities.astype(np.float64)
    weights = np.exp(VOTE_SHARPNESS * (similarities - similarities[:, :1]))
    label_similarity = np.where(agrees, similarities, -1.0).max(axis=1)
    features = {
        "log_odds": np.log(top + _EPSILON) - np.log1p(-top + _EPSILON),
        "margin": top - second,
        "vote_share": agrees.mean(axis=1),
        "weighted_vote_share": (weights * agrees).sum(axis=1) / weights.sum(axis=1),
        "nearest_similarity": similarities[:, 0],
        "label_similarity": label_similarity,
    }
    return predicted, features


def view_features(
    predicted: NDArray[np.intp], linear: NDArray[np.float64], lexical: NDArray[np.float64]
) -> dict[str, NDArray[np.float64]]:
    """The :data:`LEXICAL_FEATURES` columns, for labels predicted from the combined views."""
    rows = np.arange(predicted.size)
    return {
        "lexical_probability": lexical[rows, predicted],
        "linear_probability": linear[rows, predicted],
        "views_agree": (lexical.argmax(axis=1) == linear.argmax(axis=1)).astype(np.float64),
    }
