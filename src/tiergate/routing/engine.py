"""The engine: walks each item up the ladder as the policies say, and keeps a trace.

The one place where tiers meet policy, for any task. For every tier in the chosen ladder, in
order: ask it, turn its features into a calibrated P(correct), accept when that reaches the
tier's threshold for the answer's key (``Task.threshold_key``: per label, per field set, or one),
else climb. An unusable answer (one the task cannot use, malformed, refused, an API error) is
never accepted. When no tier accepts, the route's ``when_unsure`` decides: ``flag`` returns the
highest usable answer marked as unsure, ``human`` hands the item to a human queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tiergate.errors import TiergateError
from tiergate.routing.policy import TierPolicy
from tiergate.routing.route import LOCAL, Route
from tiergate.tasks.base import Context, Item, Payload, Task
from tiergate.tiers.base import LocalView, Tier, TierAnswer


class LocalViewer(Protocol):
    """The local model seen from the engine: texts in, one view per text."""

    def view(self, texts: Sequence[str]) -> list[LocalView]: ...


@runtime_checkable
class AsyncLocalViewer(Protocol):
    """A local model that batches concurrent callers itself (a serving process's)."""

    async def view_async(self, texts: Sequence[str]) -> list[LocalView]: ...


@dataclass(frozen=True, slots=True)
class Step:
    tier: str
    payload: Payload | None
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
    item: Item
    payload: Payload | None
    tier: str | None  # the tier whose answer is returned
    confidence: float | None
    accepted: bool  # a tier's calibrated confidence reached its threshold
    trace: list[Step]
    answers: list[TierAnswer] = field(repr=False, default_factory=list)
    handed_to_human: bool = False
    latency_s: float = 0.0

    @property
    def text(self) -> str:
        return self.item.text

    @property
    def label(self) -> Payload | None:
        """The answer under its classification name."""
        return self.payload

    @property
    def cost_usd(self) -> float:
        return sum(step.cost_usd for step in self.trace)

    @property
    def flagged(self) -> bool:
        return not self.accepted and self.payload is not None

    @property
    def escalated(self) -> bool:
        """Climbed past the first rung (or, with a one-tier ladder, was not accepted)."""
        return len(self.trace) > 1 or not self.accepted

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {
            "answer": self.payload,
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
                    "answer": step.payload,
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
        if self.payload is None or isinstance(self.payload, str):
            body["label"] = self.payload  # a classification's answer, by its usual name
        return body


class NotCalibratedError(TiergateError, RuntimeError):
    """A tier of the ladder has no policy yet: run `tiergate calibrate` first."""


class Router:
    """Answers items along a route's ladder, for the route's task."""

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

    @property
    def task(self) -> Task:
        return self.route.task

    async def decide(self, item: Item | str) -> Decision:
        return (await self.decide_many([item]))[0]

    async def classify(self, text: str) -> Decision:
        """One text through the ladder (the classification spelling of :meth:`decide`)."""
        return await self.decide(text)

    async def classify_many(self, texts: Sequence[str]) -> list[Decision]:
        return await self.decide_many(texts)

    async def decide_many(self, items: Sequence[Item | str]) -> list[Decision]:
        """Many items: the local model sees them in one batch, the paid tiers concurrently."""
        started = time.perf_counter()
        walked = [item if isinstance(item, Item) else Item(item) for item in items]
        views: list[LocalView | None] = (
            list(await self._views([item.text for item in walked]))
            if self.local is not None
            else [None] * len(walked)
        )
        local_seconds = (time.perf_counter() - started) / max(len(walked), 1)
        return list(
            await asyncio.gather(
                *(
                    self._walk(item, Context(view), local_seconds)
                    for item, view in zip(walked, views, strict=True)
                )
            )
        )

    async def _views(self, texts: list[str]) -> list[LocalView]:
        # Encoding is CPU work: off the event loop, so other requests keep moving meanwhile.
        local = self.local
        if isinstance(local, AsyncLocalViewer):
            return await local.view_async(texts)
        assert local is not None
        return await asyncio.to_thread(local.view, texts)

    async def _walk(self, item: Item, context: Context, local_seconds: float) -> Decision:
        trace: list[Step] = []
        answers: list[TierAnswer] = []
        latency = local_seconds if context.local is not None else 0.0
        for name in self.route.tiers:
            if self.policies[name].skipped:
                continue
            if name == LOCAL and LOCAL not in self.tiers:
                answer = local_answer(context)
                answer = TierAnswer(
                    LOCAL, answer.payload, answer.features, latency_s=local_seconds, model=LOCAL
                )
            elif name == LOCAL:
                answer = await self.tiers[name].answer(item, context)
            else:
                seen = Context(context.local, earlier_answers(answers))
                async with self._semaphore:
                    answer = await self.tiers[name].answer(item, seen)
                latency += answer.latency_s
            answers.append(answer)
            step = self._judge(answer)
            trace.append(step)
            if step.accepted:
                return Decision(
                    item,
                    step.payload,
                    name,
                    step.confidence,
                    True,
                    trace,
                    answers,
                    latency_s=latency,
                )
        return self._unsure(item, trace, answers, latency)

    def _judge(self, answer: TierAnswer) -> Step:
        if not answer.usable or answer.payload is None:
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
        threshold = policy.threshold_for(self.task.threshold_key(answer.payload))
        return Step(
            answer.tier,
            answer.payload,
            confidence,
            threshold,
            confidence >= threshold,
            answer.cost_usd,
            answer.latency_s,
            stated_confidence=answer.stated_confidence,
            reason=answer.reason,
        )

    def _unsure(
        self, item: Item, trace: list[Step], answers: list[TierAnswer], latency: float
    ) -> Decision:
        if self.route.when_unsure == "flag":
            for step in reversed(trace):
                if step.payload is not None:
                    return Decision(
                        item,
                        step.payload,
                        step.tier,
                        step.confidence,
                        False,
                        trace,
                        answers,
                        latency_s=latency,
                    )
        # Asked to, or with no usable answer to flag: a person decides.
        return Decision(
            item,
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
        close = getattr(self.local, "close", None)
        if callable(close):
            close()


def earlier_answers(answers: Sequence[TierAnswer]) -> tuple[tuple[str, Payload], ...]:
    """The usable answers so far, in ladder order: what the next tier's context holds."""
    return tuple((a.tier, a.payload) for a in answers if a.usable and a.payload is not None)


def local_answer(context: Context) -> TierAnswer:
    """The local model's answer, from the view the engine already computed."""
    view = context.local
    if view is None:
        return TierAnswer(LOCAL, None, {}, problem="no local model", model=LOCAL)
    prediction = view.prediction
    return TierAnswer(LOCAL, prediction.label, dict(prediction.features), model=LOCAL)
