"""What the local model says about one text."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A labelled example close to the query; the Claude tiers use these as few-shot examples."""

    text: str
    label: str
    similarity: float
    provenance: str


@dataclass(frozen=True, slots=True, eq=False)
class LocalPrediction:
    """The local model's answer and the evidence a calibrator turns into P(correct).

    ``probabilities`` is aligned with ``LocalModel.labels``. ``vote_share`` is the share of the
    k nearest labelled examples that carry ``label``; ``nearest_similarity`` is the cosine
    similarity to the closest one (low for texts unlike anything seen, e.g. out of scope).
    """

    label: str
    probability: float
    margin: float
    vote_share: float
    nearest_similarity: float
    neighbours: tuple[Neighbour, ...]
    probabilities: NDArray[np.float64]
    # Every confidence feature of classifier.features.LOCAL_FEATURES, for the local calibrator.
    features: dict[str, float] = field(default_factory=dict)
