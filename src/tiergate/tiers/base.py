"""The tier interface: a ticket in, a labelled answer with its cost and confidence features out.

A tier never decides whether its answer is good enough; the engine does, with a calibrator and
a threshold fitted per tier (see ``tiergate.routing``). A tier that fails to give a usable answer
(a label outside the label set, malformed structured output, a refusal, an API error after the
SDK's retries) returns an answer with ``label=None`` and a ``problem``: the engine escalates it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tiergate.classifier.prediction import LocalPrediction, Neighbour
from tiergate.core.usage import Usage


@dataclass(frozen=True, slots=True)
class LocalView:
    """The local model's prediction for a ticket, with the label index to read it by name.

    The Claude tiers use it for few-shot examples (``neighbours``) and agreement features.
    """

    prediction: LocalPrediction
    label_index: Mapping[str, int]

    @property
    def label(self) -> str:
        return self.prediction.label

    @property
    def neighbours(self) -> Sequence[Neighbour]:
        return self.prediction.neighbours

    def probability_of(self, label: str) -> float:
        index = self.label_index.get(label)
        return 0.0 if index is None else float(self.prediction.probabilities[index])


@dataclass(frozen=True, slots=True)
class Ticket:
    text: str
    local: LocalView | None = None
    id: str | None = None


@dataclass(frozen=True)
class TierAnswer:
    tier: str
    label: str | None
    features: dict[str, float]
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    stated_confidence: float | None = None
    reason: str = ""
    problem: str | None = None
    model: str | None = None

    @property
    def usable(self) -> bool:
        return self.label is not None and self.problem is None


class Tier(Protocol):
    @property
    def name(self) -> str: ...

    async def answer(self, ticket: Ticket) -> TierAnswer: ...

    async def aclose(self) -> None: ...


def agreement_features(label: str, local: LocalView | None) -> dict[str, float]:
    """Features that say how well a label agrees with the local model's view of the ticket."""
    if local is None:
        return {}
    votes = [neighbour.label for neighbour in local.neighbours]
    share = votes.count(label) / len(votes) if votes else 0.0
    return {
        "local_probability": local.probability_of(label),
        "agrees_with_local": 1.0 if label == local.label else 0.0,
        "neighbour_vote": share,
        "local_margin": local.prediction.margin,
        "nearest_similarity": local.prediction.nearest_similarity,
    }
