"""Where the emulator's time comes from: the wall clock, or a hand-moved one for tests.

Cache TTLs, rate-limit buckets and batch processing all read the same clock, so a test can
expire a 5-minute cache entry by moving the clock instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds since the Unix epoch (dates in responses are written from it)."""
        ...


def system_clock() -> float:
    return time.time()


class ManualClock:
    """A clock that moves only when told to; safe to move from a test thread."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += seconds
