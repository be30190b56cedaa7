"""Drift signals: what moves before the error does, against its calibration-time reference.

Three signals per route, over the last ``window`` decisions served:

- ``confidence``: the first rung's calibrated P(correct) (the local tier's, on a full ladder);
- ``escalation``: the share of requests the first rung did not accept;
- ``similarity``: the cosine similarity of a new input to its nearest labelled training
  example (the local model's ``nearest_similarity``): low for inputs unlike anything trained on.

The reference is the same quantity on the calibration tickets (``calibration_runs.json`` read
through the route's policies). Each continuous signal reports the two-sample Kolmogorov-Smirnov
distance between the live window and the reference, and shares of ten equal bins for a chart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tiergate.routing.engine import Decision, Router
from tiergate.routing.route import LOCAL
from tiergate.routing.runtime import RuntimeSetupError, load_runs

SIMILARITY = "nearest_similarity"
BINS = 10


@dataclass(frozen=True)
class Reference:
    confidence: list[float]
    escalation: float | None
    similarity: list[float]


def first_rung(router: Router) -> str | None:
    return next((t for t in router.route.tiers if not router.policies[t].skipped), None)


def reference_of(router: Router) -> Reference:
    """The signals on the calibration tickets (empty when nothing was recorded)."""
    tier = first_rung(router)
    try:
        recorded = load_runs(router.route)
    except (RuntimeSetupError, OSError, ValueError, KeyError):
        return Reference([], None, [])
    answers = recorded.runs.get(tier or "", [])
    policy = router.policies.get(tier or "")
    confidences: list[float] = []
    escalated = 0
    for answer in answers:
        if policy is None or not answer.usable:
            escalated += 1
            continue
        score = policy.score(answer.features)
        confidences.append(score)
        if score < policy.threshold_for(router.task.threshold_key(answer.payload)):
            escalated += 1
    local = recorded.runs.get(LOCAL, [])
    similarity = [float(a.features[SIMILARITY]) for a in local if SIMILARITY in a.features]
    return Reference(confidences, escalated / len(answers) if answers else None, similarity)


class DriftMonitor:
    def __init__(self, router: Router, window: int, reference: Reference) -> None:
        self.window = window
        self.reset(router, reference)

    def reset(self, router: Router, reference: Reference) -> None:
        """Start again (a new calibration): ``reference`` from :func:`reference_of`, which reads
        a file, so the caller computes it off the event loop."""
        self.first = first_rung(router)
        self.reference = reference
        self._confidence: deque[float] = deque(maxlen=self.window)
        self._escalated: deque[bool] = deque(maxlen=self.window)
        self._similarity: deque[float] = deque(maxlen=self.window)

    def observe(self, decision: Decision) -> None:
        """On the hot path: three appends."""
        self._escalated.append(decision.escalated)
        if decision.trace and decision.trace[0].tier == self.first:
            confidence = decision.trace[0].confidence
            if confidence is not None:
                self._confidence.append(confidence)
        if decision.answers and decision.answers[0].tier == LOCAL:
            similarity = decision.answers[0].features.get(SIMILARITY)
            if similarity is not None:
                self._similarity.append(float(similarity))

    def report(self) -> dict[str, Any]:
        escalated = list(self._escalated)
        return {
            "window_size": self.window,
            "first_rung": self.first,
            "confidence": _continuous(list(self._confidence), self.reference.confidence),
            "similarity": _continuous(list(self._similarity), self.reference.similarity),
            "escalation": {
                "live": sum(escalated) / len(escalated) if escalated else None,
                "live_count": len(escalated),
                "reference": self.reference.escalation,
            },
        }


def _continuous(live: Sequence[float], reference: Sequence[float]) -> dict[str, Any]:
    low = min([*live, *reference], default=0.0)
    high = max([*live, *reference], default=1.0)
    edges = np.linspace(low, high if high > low else low + 1.0, BINS + 1)
    return {
        "live_mean": float(np.mean(live)) if live else None,
        "live_count": len(live),
        "reference_mean": float(np.mean(reference)) if reference else None,
        "reference_count": len(reference),
        "ks_distance": ks_distance(live, reference),
        "bin_edges": [float(edge) for edge in edges],
        "live_bins": _shares(live, edges),
        "reference_bins": _shares(reference, edges),
    }


def _shares(values: Sequence[float], edges: np.ndarray[Any, Any]) -> list[float]:
    if not values:
        return [0.0] * BINS
    counts, _ = np.histogram(values, bins=edges)
    return [float(count) / len(values) for count in counts]


def ks_distance(first: Sequence[float], second: Sequence[float]) -> float | None:
    """The largest gap between the two empirical distribution functions (None if either is
    empty)."""
    if not first or not second:
        return None
    a, b = np.sort(np.asarray(first)), np.sort(np.asarray(second))
    points = np.concatenate([a, b])
    gap = np.abs(
        np.searchsorted(a, points, side="right") / len(a)
        - np.searchsorted(b, points, side="right") / len(b)
    )
    return float(gap.max())
