"""Shared pieces for routing tests: a hand-made local prediction and a fixed calibrator."""

from __future__ import annotations

import numpy as np

from tiergate.calibration import Calibrator, PerLabelThresholds, ThresholdResult
from tiergate.classifier.prediction import LocalPrediction, Neighbour
from tiergate.routing.policy import TierPolicy
from tiergate.tiers.base import LocalView

LABELS = ("card_arrival", "lost_card", "refund")


def view(label: str = "card_arrival", probability: float = 0.9) -> LocalView:
    probabilities = np.full(len(LABELS), (1 - probability) / (len(LABELS) - 1))
    probabilities[LABELS.index(label)] = probability
    neighbours = tuple(Neighbour(f"example {i}", label, 0.8, "gold") for i in range(3))
    prediction = LocalPrediction(
        label,
        probability,
        probability - 0.05,
        1.0,
        0.8,
        neighbours,
        probabilities,
        features={"local_probability": probability},
    )
    return LocalView(prediction, {name: i for i, name in enumerate(LABELS)})


def sigmoid_policy(feature: str, threshold: float) -> TierPolicy:
    """P(correct) = sigmoid(feature value); accept when it reaches ``threshold``."""
    calibrator = Calibrator(
        feature_names=(feature,), mean=(0.0,), scale=(1.0,), weights=(1.0,), intercept=0.0
    )
    result = ThresholdResult(
        threshold=threshold,
        budget=0.01,
        delta=0.05,
        accepted_share=0.5,
        accepted=100,
        errors=0,
        upper_bound=0.01,
        calibration_size=200,
    )
    return TierPolicy(calibrator, PerLabelThresholds(result))
