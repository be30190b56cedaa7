"""Recorded answers, replayed: re-run the engine under new thresholds for free."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tiergate.tasks.base import Context, Item
from tiergate.tiers.base import LocalView, TierAnswer


class ReplayTier:
    """Answers each item with what a tier answered before (looked up by text)."""

    def __init__(self, name: str, answers: Mapping[str, TierAnswer]) -> None:
        self._name = name
        self._answers = answers

    @property
    def name(self) -> str:
        return self._name

    async def answer(self, item: Item, context: Context) -> TierAnswer:
        recorded = self._answers.get(item.text)
        if recorded is None:
            return TierAnswer(self._name, None, {}, problem="no recorded answer", model=self._name)
        return recorded

    async def aclose(self) -> None:
        return None


class ReplayViewer:
    """The local model's recorded views, looked up by text."""

    def __init__(self, views: Mapping[str, LocalView]) -> None:
        self._views = views

    def view(self, texts: Sequence[str]) -> list[LocalView]:
        return [self._views[text] for text in texts]
