"""The tier interface: an item in, an answer with its cost and confidence features out.

A tier never decides whether its answer is good enough; the engine does, with a calibrator and
a threshold fitted per tier (see ``tiergate.routing``). A tier that fails to give a usable answer
(an answer the task cannot use, malformed structured output, a refusal, an API error after the
transport's retries) returns an answer with ``payload=None`` and a ``problem``: the engine
escalates it. What a request and an answer look like is the task's business (``tasks/``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tiergate.classifier.prediction import LocalPrediction, Neighbour
from tiergate.core.usage import Usage
from tiergate.tasks.base import Context, Item, Payload


@dataclass(frozen=True, slots=True)
class LocalView:
    """The local model's prediction for an item, with the label index to read it by name.

    The paid tiers use it for few-shot examples (``neighbours``) and agreement features.
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


@dataclass(frozen=True)
class TierAnswer:
    tier: str
    payload: Payload | None
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
        return self.payload is not None and self.problem is None

    @property
    def label(self) -> Payload | None:
        """The payload under its classification name."""
        return self.payload


class Tier(Protocol):
    @property
    def name(self) -> str: ...

    async def answer(self, item: Item, context: Context) -> TierAnswer: ...

    async def aclose(self) -> None: ...
