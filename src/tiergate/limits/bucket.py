"""A token bucket that refills continuously, the way Anthropic enforces per-minute limits.

It holds no clock: every method takes ``now`` in seconds, from any monotonic-enough source.
That keeps it deterministic under test and reusable by the gateway with a shared clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """``capacity`` tokens at most, refilled at ``per_second``; starts full at ``updated_at``.

    ``level`` may go below zero after :meth:`take` with ``force``: a debt that refilling repays
    before anything else is admitted (how output tokens, known only afterwards, are charged).
    """

    capacity: float
    per_second: float
    level: float
    updated_at: float

    @classmethod
    def per_minute(cls, limit: float, now: float) -> TokenBucket:
        """A per-minute limit: bursts up to ``limit``, refills ``limit / 60`` a second."""
        if limit <= 0:
            raise ValueError(f"a per-minute limit must be positive, got {limit}")
        return cls(
            capacity=float(limit), per_second=limit / 60.0, level=float(limit), updated_at=now
        )

    def available(self, now: float) -> float:
        """Tokens available at ``now`` (refills lazily; time going backwards refills nothing)."""
        if now > self.updated_at:
            self.level = min(self.capacity, self.level + (now - self.updated_at) * self.per_second)
            self.updated_at = now
        return self.level

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` tokens are available (0 if now; inf if more than capacity)."""
        if amount > self.capacity:
            return math.inf
        missing = amount - self.available(now)
        return max(0.0, missing / self.per_second)

    def try_take(self, amount: float, now: float) -> bool:
        """Take ``amount`` if it is all there; otherwise take nothing."""
        if self.available(now) < amount:
            return False
        self.level -= amount
        return True

    def take(self, amount: float, now: float) -> None:
        """Take ``amount`` unconditionally; the level may go negative (a debt)."""
        self.available(now)
        self.level -= amount

    def give_back(self, amount: float, now: float) -> None:
        """Return tokens reserved but not used, never above capacity."""
        self.available(now)
        self.level = min(self.capacity, self.level + amount)

    def full_at(self, now: float) -> float:
        """The time at which the bucket will be full again (``now`` if it is full)."""
        missing = self.capacity - self.available(now)
        return now + max(0.0, missing / self.per_second)
