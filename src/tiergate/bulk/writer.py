"""Writes results in input order, whatever order they finish in, within a bounded window.

The reader takes a slot (``reserve``) before handing a row on; a slot is freed when the row's
result is written. So at most ``window`` rows are in flight or waiting for an earlier row, and
memory stays flat however long the file is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tiergate.bulk.durable import AppendFile

SYNC_EVERY_S = 1.0


@dataclass
class Written:
    """What was written in this run, for the progress bar."""

    rows: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    escalated: int = 0


@dataclass(frozen=True)
class Result:
    output: dict[str, Any] | None = None
    errors: tuple[dict[str, Any], ...] = ()


@dataclass
class OrderedWriter:
    output: AppendFile
    errors: AppendFile
    window: int
    on_written: Callable[[int], None] = lambda line: None
    sync_also: Callable[[], None] = lambda: None
    written: Written = field(default_factory=Written)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.window)
        self._waiting: dict[int, Result] = {}
        self._next = 0
        self._issued = 0
        self._synced_at = time.monotonic()

    async def reserve(self) -> int:
        """A place in the output order; waits while the window is full."""
        await self._slots.acquire()
        place = self._issued
        self._issued += 1
        return place

    def put(self, place: int, result: Result) -> None:
        self._waiting[place] = result
        while self._next in self._waiting:
            self._write(self._waiting.pop(self._next))
            self._next += 1
            self._slots.release()
        if time.monotonic() - self._synced_at >= SYNC_EVERY_S:
            self.sync()

    def _write(self, result: Result) -> None:
        # The output row first: if a kill falls in between, a lost note in the errors file is
        # harmless, a lost output row behind a written error line would be skipped on resume.
        if result.output is not None:
            self.output.append(result.output)
            self.written.rows += 1
            self.written.cost_usd += float(result.output.get("cost_usd") or 0.0)
            self.written.escalated += bool(result.output.get("escalated"))
            self.on_written(int(result.output["line"]))
        for error in result.errors:
            self.errors.append(error)
            self.written.errors += 1

    @property
    def full(self) -> bool:
        return self._slots.locked()

    def sync(self) -> None:
        """Make what was written so far survive a power loss, not only a killed process."""
        self.sync_also()
        self.output.sync()
        self.errors.sync()
        self._synced_at = time.monotonic()
