"""Routing policies as arrays: what each prompt's served answer scores and what its calls cost.

A policy sends some prompts straight to the strong model and the rest to its *cheap side*:

- pre-call (``second is None``): the cheap model answers;
- pre-call + cascade (``second`` names a second cheap model): the cheap model and the second one
  both answer; the cheap answer is served when the two agree, else the strong model answers too
  and its answer is served. Every call made is paid for.

With everything on the cheap side, pre-call + cascade is the plain agreement cascade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tiergate.precall.records import Record, answers_agree

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Per-model correctness, cost and answers over a list of records, as aligned arrays."""

    correct: dict[str, FloatArray]
    cost: dict[str, FloatArray]
    answers: dict[str, list[str | None]]

    @classmethod
    def from_records(cls, records: Sequence[Record], models: Sequence[str]) -> Outcomes:
        """Arrays for ``models`` (each must be in every record); unknown ``correct`` is NaN."""
        correct = {
            m: np.array([_or_nan(r.models[m].correct) for r in records], dtype=np.float64)
            for m in models
        }
        cost = {m: np.array([r.models[m].cost for r in records], dtype=np.float64) for m in models}
        answers = {m: [r.models[m].answer for r in records] for m in models}
        return cls(correct, cost, answers)

    def agree(self, first: str, second: str) -> BoolArray:
        pairs = zip(self.answers[first], self.answers[second], strict=True)
        return np.array([answers_agree(a, b) for a, b in pairs], dtype=np.bool_)

    def subset(self, keep: BoolArray) -> Outcomes:
        """The prompts where ``keep`` is true, in order."""
        return Outcomes(
            {m: v[keep] for m, v in self.correct.items()},
            {m: v[keep] for m, v in self.cost.items()},
            {m: [a for a, k in zip(v, keep, strict=True) if k] for m, v in self.answers.items()},
        )

    def has_answers(self, model: str) -> bool:
        return any(answer is not None for answer in self.answers[model])


@dataclass(frozen=True, slots=True)
class Variant:
    cheap: str
    strong: str
    second: str | None = None

    @property
    def key(self) -> str:
        """A stable name for reports and JSON: ``precall`` or ``precall+cascade:MODEL``."""
        return "precall" if self.second is None else f"precall+cascade:{self.second}"

    @property
    def models(self) -> list[str]:
        return [self.cheap, self.strong] + ([self.second] if self.second else [])

    def cheap_side(self, outcomes: Outcomes) -> tuple[FloatArray, FloatArray]:
        """Correctness and cost of each prompt if it takes the cheap side."""
        correct, cost = outcomes.correct[self.cheap], outcomes.cost[self.cheap]
        if self.second is None:
            return correct, cost
        agree = outcomes.agree(self.cheap, self.second)
        strong_correct, strong_cost = outcomes.correct[self.strong], outcomes.cost[self.strong]
        served = np.where(agree, correct, strong_correct)
        paid = cost + outcomes.cost[self.second] + np.where(agree, 0.0, strong_cost)
        return served, paid


@dataclass(frozen=True, slots=True)
class Served:
    """A policy run over prompts: each served answer's score, the cost paid, who answered."""

    correct: FloatArray
    cost: FloatArray
    strong_answered: BoolArray
    cheap_calls: FloatArray

    @classmethod
    def run(cls, variant: Variant, outcomes: Outcomes, cheap_side: BoolArray) -> Served:
        """Serve each prompt as the policy says; ``cheap_side`` marks prompts not sent straight."""
        side_correct, side_cost = variant.cheap_side(outcomes)
        strong_correct, strong_cost = (
            outcomes.correct[variant.strong],
            outcomes.cost[variant.strong],
        )
        escalated = (
            ~outcomes.agree(variant.cheap, variant.second)
            if variant.second is not None
            else np.zeros(cheap_side.shape, dtype=np.bool_)
        )
        calls_per_prompt = 1.0 if variant.second is None else 2.0
        return cls(
            correct=np.where(cheap_side, side_correct, strong_correct),
            cost=np.where(cheap_side, side_cost, strong_cost),
            strong_answered=~cheap_side | (cheap_side & escalated),
            cheap_calls=np.where(cheap_side, calls_per_prompt, 0.0),
        )


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value
