"""Per tier: how features become a calibrated P(correct), and the thresholds that accept it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tiergate.calibration import Calibrator, PerLabelThresholds


@dataclass(frozen=True)
class TierPolicy:
    calibrator: Calibrator
    thresholds: PerLabelThresholds
    # Outside the sub-ladder the fit chose: never asked (a cheaper certified ladder skips it).
    skipped: bool = False

    def score(self, features: Mapping[str, float]) -> float:
        columns = {
            name: np.array([features.get(name, 0.0)]) for name in self.calibrator.feature_names
        }
        return float(self.calibrator.predict(columns)[0])

    def threshold_for(self, label: str) -> float:
        return self.thresholds.threshold_for(label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibrator": self.calibrator.to_dict(),
            "thresholds": self.thresholds.to_dict(),
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TierPolicy:
        return cls(
            Calibrator.from_dict(data["calibrator"]),
            PerLabelThresholds.from_dict(data["thresholds"]),
            skipped=bool(data.get("skipped", False)),
        )
