"""A bulk run's progress, reported to a :class:`tiergate.progress.Tracker`: rows, cost, rates.

Sampled twice a second from what the writer has written (a row is done when its line is in the
output file), so the rows pay nothing for it. The stage's note carries the escalation share and
the upstream request rate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from tiergate.bulk.writer import Written
from tiergate.progress import Stage

INTERVAL_S = 0.5


@dataclass(frozen=True)
class Snapshot:
    rows: int
    errors: int
    cost_usd: float
    escalated: int
    upstream_calls: int


def note(now: Snapshot, elapsed_s: float) -> str:
    share = now.escalated / now.rows if now.rows else 0.0
    upstream = now.upstream_calls / elapsed_s if elapsed_s > 0 else 0.0
    return f"escalated {share:.1%}, upstream {upstream:,.1f}/s"


class Ticker:
    """Advances ``stage`` by what was written since the last tick."""

    def __init__(
        self,
        stage: Stage,
        sample: Callable[[], Snapshot],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stage = stage
        self._sample = sample
        self._clock = clock
        self._started = clock()
        self._last = Snapshot(0, 0, 0.0, 0, 0)

    def tick(self) -> None:
        now, last = self._sample(), self._last
        self._stage.advance(
            now.rows + now.errors - last.rows - last.errors,
            cost_usd=now.cost_usd - last.cost_usd,
            note=note(now, self._clock() - self._started),
        )
        self._last = now

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            await asyncio.sleep(INTERVAL_S)
            self.tick()


def snapshot(written: Written, upstream_calls: int) -> Snapshot:
    return Snapshot(
        written.rows, written.errors, written.cost_usd, written.escalated, upstream_calls
    )
