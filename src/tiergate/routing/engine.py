"""The engine: walks each ticket up the ladder as the policies say, and keeps a trace.

The one place where tiers meet policy. For every tier in the route's ladder, in order: ask it,
turn its features into a calibrated P(correct), accept when that reaches the tier's threshold
for the answered label, else climb. An unusable answer (wrong label, malformed, refused, API
error) is never accepted. When no tier accepts, the route's ``when_unsure`` decides: ``flag``
returns the highest usable answer marked as unsure, ``human`` hands the ticket to a human queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tiergate.errors import TiergateError
from tiergate.routing.policy import TierPolicy
from tiergate.routing.route import LOCAL, Route
from tiergate.tiers.base import LocalView, Ticket, Tier, TierAnswer


class LocalViewer(Protocol):
    """The local model seen from the engine: texts in, one view per text."""

    def view(self, texts: Sequence[str]) -> list[LocalView]: ...


@dataclass(frozen=True, slots=True)
class Step:
    tier: str
    label: str | None
    confidence: float | None  # calibrated P(correct); None when the answer was unusable
    threshold: float | None
    accepted: bool
    cost_usd: float
    latency_s: float
    stated_confidence: float | None = None
    problem: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    text: str
    label: str | None
    tier: str | None  # the tier whose answer is returned
    confidence: float | None
    accepted: bool  # a tier's calibrated confidence reached its threshold
    trace: list[Step]
    answers: list[TierAnswer] = field(repr=False, default_factory=list)
    handed_to_human: bool = False
    latency_s: float = 0.0

    @property
    def cost_usd(self) -> float:
        return sum(step.cost_usd for step in self.trace)

    @property
    def flagged(self) -> bool:
        return not self.accepted and self.label is not None

    @property
    def escalated(self) -> bool:
        """Climbed past the first rung (or, with a one-tier ladder, was not accepted)."""
        return len(self.trace) > 1 or not self.accepted

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "tier": self.tier,
            "confidence": self.confidence,
            "accepted": self.accepted,
            "flagged": self.flagged,
            "handed_to_human": self.handed_to_human,
            "escalated": self.escalated,
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "trace": [
                {
                    "tier": step.tier,
                    "label": step.label,
                    "confidence": step.confidence,
                    "threshold": step.threshold,
                    "accepted": step.accepted,
                    "stated_confidence": step.stated_confidence,
                    "cost_usd": step.cost_usd,
                    "latency_s": step.latency_s,
                    "problem": step.problem,
                    "reason": step.reason,
                }
                for step in self.trace
            ],
        }


class NotCalibratedError(TiergateError, RuntimeError):
    """A tier of the ladder has no policy yet: run `tiergate calibrate` first."""


class Router:
    """Classifies tickets along a route's ladder."""

    def __init__(
        self,
        route: Route,
        tiers: Mapping[str, Tier],
        policies: Mapping[str, TierPolicy],
        local: LocalViewer | None,
        *,
        concurrency: int = 32,
    ) -> None:
        missing = [name for name in route.tiers if name not in policies]
        if missing:
            raise NotCalibratedError(
                f"route {route.name!r} has no calibration for {', '.join(missing)}: "
                f"run `tiergate calibrate {route.path}` first"
            )
        if LOCAL in route.tiers and local is None and LOCAL not in tiers:
            raise NotCalibratedError(f"route {route.name!r} needs a trained local model")
        self.route = route
        self.tiers = dict(tiers)
        self.policies = dict(policies)
        self.local = local
        self._semaphore = asyncio.Semaphore(concurrency)

    async def classify(self, text: str) -> Decision:
        return (await self.classify_many([text]))[0]

    async def classify_many(self, texts: Sequence[str]) -> list[Decision]:
        """Classify many tickets: the local model sees them in one batch, Claude concurrently."""
        started = time.perf_counter()
        # Encoding is CPU work: off the event loop, so other requests keep moving meanwhile.
        views: list[LocalView | None] = (
            list(await asyncio.to_thread(self.local.view, texts))
            if self.local is not None
            else [None] * len(texts)
        )
        local_seconds = (time.perf_counter() - started) / max(len(texts), 1)
        return list(
            await asyncio.gather(
                *(
                    self._walk(Ticket(text, view), local_seconds)
                    for text, view in zip(texts, views, strict=True)
                )
            )
        )

    async def _walk(self, ticket: Ticket, local_seconds: float) -> Decision:
        trace: list[Step] = []
        answers: list[TierAnswer] = []
        latency = local_seconds if ticket.local is not None else 0.0
        for name in self.route.tiers:
            if self.policies[name].skipped:
                continue
            if name == LOCAL and LOCAL not in self.tiers:
                answer = local_answer(ticket)
                answer = TierAnswer(
                    LOCAL, answer.label, answer.features, latency_s=local_seconds, model=LOCAL
                )
            elif name == LOCAL:
                answer = await self.tiers[name].answer(ticket)
            else:
                async with self._semaphore:
                    answer = await self.tiers[name].answer(ticket)
                latency += answer.latency_s
            answers.append(answer)
            step = self._judge(answer)
            trace.append(step)
            if step.accepted:
                return Decision(
                    ticket.text,
                    step.label,
                    name,
                    step.confidence,
                    True,
                    trace,
                    answers,
                    latency_s=latency,
                )
        return self._unsure(ticket, trace, answers, latency)

    def _judge(self, answer: TierAnswer) -> Step:
        if not answer.usable or answer.label is None:
            return Step(
                answer.tier,
                None,
                None,
                None,
                False,
                answer.cost_usd,
                answer.latency_s,
                problem=answer.problem or "no answer",
            )
        policy = self.policies[answer.tier]
        confidence = policy.score(answer.features)
        threshold = policy.threshold_for(answer.label)
        return Step(
            answer.tier,
            answer.label,
            confidence,
            threshold,
            confidence >= threshold,
            answer.cost_usd,
            answer.latency_s,
            stated_confidence=answer.stated_confidence,
            reason=answer.reason,
        )

    def _unsure(
        self, ticket: Ticket, trace: list[Step], answers: list[TierAnswer], latency: float
    ) -> Decision:
        if self.route.when_unsure == "flag":
            for step in reversed(trace):
                if step.label is not None:
                    return Decision(
                        ticket.text,
                        step.label,
                        step.tier,
                        step.confidence,
                        False,
                        trace,
                        answers,
                        latency_s=latency,
                    )
        # Asked to, or with no usable answer to flag: a person decides.
        return Decision(
            ticket.text,
            None,
            None,
            None,
            False,
            trace,
            answers,
            handed_to_human=True,
            latency_s=latency,
        )

    async def aclose(self) -> None:
        for tier in self.tiers.values():
            await tier.aclose()


def local_answer(ticket: Ticket) -> TierAnswer:
    """The local model's answer, from the view the engine already computed."""
    view = ticket.local
    if view is None:
        return TierAnswer(LOCAL, None, {}, problem="no local model", model=LOCAL)
    prediction = view.prediction
    return TierAnswer(LOCAL, prediction.label, dict(prediction.features), model=LOCAL)
