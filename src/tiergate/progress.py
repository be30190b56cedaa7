"""How long library work reports its progress: a small protocol, and the silent default.

Training, calibration, evaluation, bulk runs and the audit report open a *stage* per step
(``tracker.stage("claude-haiku-4-5 on the calibration split", total=1998)``) and advance it as
work is done, with the money that work cost. The library never draws anything: the command line
passes a tracker that draws bars on a terminal (``tiergate.cli.progress``); a library caller
passes its own, or gets :data:`NO_PROGRESS`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Stage(Protocol):
    def advance(self, count: int = 1, *, cost_usd: float = 0.0, note: str | None = None) -> None:
        """``count`` more units done, which cost ``cost_usd`` more; ``note`` replaces the
        stage's free-text detail (an escalation rate, say)."""
        ...


class Tracker(Protocol):
    def stage(
        self, description: str, total: int | None, *, unit: str = "items", done: int = 0
    ) -> AbstractContextManager[Stage]:
        """A step of ``total`` units (``None``: unknown), ``done`` of them before this run;
        it ends when the context exits."""
        ...


class _SilentStage:
    def advance(self, count: int = 1, *, cost_usd: float = 0.0, note: str | None = None) -> None:
        return None


class _Silent:
    @contextmanager
    def stage(
        self, description: str, total: int | None, *, unit: str = "items", done: int = 0
    ) -> Iterator[Stage]:
        yield _SilentStage()


NO_PROGRESS: Tracker = _Silent()
