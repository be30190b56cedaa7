"""Learned routes (``kind: learned``): a trained pre-call router picks the model per request.

    routes:
      chat:
        kind: learned
        router: out/router          # written by `tiergate router train --out out/router`
        tiers: {cheap: claude-haiku-4-5, strong: claude-sonnet-4-6}

The router (``tiergate.precall``) embeds the end of the prompt and estimates whether the cheap
model's answer will be good enough; at or above its fitted threshold the request goes to the
cheap model, else straight to the strong one. From there it is a request like any other (the
same budgets, limits, retries, fallbacks, ledger row), with ``x-tiergate-tier: cheap|strong``
and the router's score and threshold in headers.

The gateway serves the router's pre-call variant: its cascade variants compare two cheap
models' answers, which needs answers that can be compared (multiple choice), not free text.
A missing or damaged router fails the config load; a router that certified no threshold sends
everything to the strong model, which is the safe side.

This module is imported only when the config has a learned route, so other gateways never load
numpy or an encoder for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate.gateway.rules import Choice

if TYPE_CHECKING:
    from tiergate.batching import BatchStats
    from tiergate.gateway.route_config import LearnedRoute
    from tiergate.precall.base import Decision
    from tiergate.precall.router import LearnedRouter

PRECALL = "precall"  # the variant the gateway serves (tiergate.precall.policy.Variant.key)
SCORE_HEADER = "x-tiergate-router-score"
THRESHOLD_HEADER = "x-tiergate-router-threshold"


def check_artifact(directory: Path) -> None:
    """Refuse, when the config loads, a router that is missing, damaged or has no pre-call
    variant (a ValueError, which the config reports under the route's ``router`` field)."""
    from tiergate.precall.artifact import RouterArtifact, RouterArtifactError

    try:
        RouterArtifact.load(directory).fit(PRECALL)
    except RouterArtifactError as error:
        raise ValueError(
            f"{error}; train one with `tiergate router train --data DIR --cheap MODEL "
            f"--strong MODEL --out {directory}`"
        ) from None


class LearnedChooser:
    """One learned route: prompt in, cheap or strong model out."""

    def __init__(self, config: LearnedRoute, router: LearnedRouter) -> None:
        from tiergate.batching import Batched

        self.config = config
        self.router = router
        # Prompts of concurrent requests are decided together (one encoder call per batch), on
        # a worker thread: the event loop never waits for the encoder.
        self._batched: Batched[list[Decision]] = Batched(
            router.decide_many, name=f"tiergate-router-{config.name}"
        )

    @classmethod
    def open(cls, config: LearnedRoute) -> LearnedChooser:
        from tiergate.precall.router import LearnedRouter

        return cls(config, LearnedRouter.load(config.router, variant=PRECALL))

    @property
    def models(self) -> tuple[str, str]:
        return self.config.tiers.cheap, self.config.tiers.strong

    async def choose(self, body: Mapping[str, Any]) -> Choice:
        prompt = prompt_text(body)
        if not prompt.strip():
            return Choice("strong", self.config.tiers.strong, "no text for the router")
        [decision] = await self._batched.call_async([prompt])
        model = self.config.tiers.cheap if decision.tier == "cheap" else self.config.tiers.strong
        comparison = ">=" if decision.tier == "cheap" else "<"
        return Choice(
            decision.tier,
            model,
            f"router score {decision.score:.3f} {comparison} {decision.threshold:.3f}",
            (
                (SCORE_HEADER, f"{decision.score:.4f}"),
                (THRESHOLD_HEADER, f"{decision.threshold:.4f}"),
            ),
        )

    @property
    def stats(self) -> BatchStats:
        """How many batches the router ran, over how many prompts."""
        return self._batched.stats

    def close(self) -> None:
        self._batched.close()


def open_learned(routes: Iterable[LearnedRoute]) -> dict[str, LearnedChooser]:
    """Each route's router and encoder, loaded at start-up (an encoder takes seconds)."""
    return {route.name: LearnedChooser.open(route) for route in routes}


def prompt_text(body: Mapping[str, Any]) -> str:
    """The request's text as the router was trained on prompts: system, then each turn's text
    blocks in order, one paragraph each (the router reads the end: the question asked last)."""
    parts = list(_texts(body.get("system")))
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            parts += _texts(message.get("content"))
    return "\n\n".join(part for part in parts if part.strip())


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [
            block["text"]
            for block in content
            if isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        ]
    return []
