"""The pre-call router seam: a prompt in, a tier out, before any model is called.

A gateway asks ``decide(prompt)`` per request and gets a :class:`Decision`: ``cheap`` or
``strong`` and the score behind it. A decision may name a ``second_opinion``: the policy then
wants the cheap model's answer checked against that second cheap model's, and the request
escalated to the strong model when the two disagree (:meth:`Decision.after`). Anything with
``decide`` and ``decide_many`` is a router; :class:`tiergate.precall.router.LearnedRouter` is the
one trained from records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

Tier = Literal["cheap", "strong"]
CHEAP: Tier = "cheap"
STRONG: Tier = "strong"


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one prompt goes, and why.

    ``score`` is the router's estimate that the cheap tier's answer is good enough; the prompt
    goes to the cheap tier when ``score >= threshold``.
    """

    tier: Tier
    score: float
    threshold: float
    second_opinion: str | None = None

    def after(self, agree: bool) -> Tier:
        """The tier whose answer to serve once the cheap answers are in.

        Without a second opinion the decision stands. With one, the cheap answer is served only
        when the second cheap model agreed with it; otherwise the strong model answers.
        """
        if self.tier == STRONG or self.second_opinion is None:
            return self.tier
        return CHEAP if agree else STRONG


@runtime_checkable
class PrecallRouter(Protocol):
    def decide(self, prompt: str) -> Decision: ...

    def decide_many(self, prompts: Sequence[str]) -> list[Decision]: ...
