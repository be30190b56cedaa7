"""A one-line progress bar on stderr: rows, rate, ETA, running cost, escalation rate.

On a terminal the line is redrawn in place; into a log file it is printed every few seconds.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from tiergate.bulk.writer import Written


@dataclass(frozen=True)
class Snapshot:
    rows: int
    errors: int
    cost_usd: float
    escalated: int
    upstream_calls: int


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def progress_line(now: Snapshot, total: int, done_before: int, elapsed_s: float) -> str:
    done = done_before + now.rows + now.errors
    rate = (now.rows + now.errors) / elapsed_s if elapsed_s > 0 else 0.0
    left = max(0, total - done)
    eta = duration(left / rate) if rate > 0 else "--"
    share = now.escalated / now.rows if now.rows else 0.0
    upstream = now.upstream_calls / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"{done:>9,}/{total:,} rows  {rate:7.1f} rows/s  ETA {eta:>6}  "
        f"${now.cost_usd:,.4f}  escalated {share:5.1%}  upstream {upstream:6.1f}/s"
    )


class ProgressBar:
    def __init__(
        self,
        total: int,
        done_before: int,
        sample: Callable[[], Snapshot],
        *,
        stream: TextIO = sys.stderr,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._total = total
        self._done_before = done_before
        self._sample = sample
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._tty = stream.isatty()

    def draw(self, final: bool = False) -> None:
        line = progress_line(
            self._sample(), self._total, self._done_before, self._clock() - self._started
        )
        if self._tty:
            self._stream.write("\r" + line + ("\n" if final else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    async def run(self) -> None:
        """Redraw until cancelled."""
        interval = 0.5 if self._tty else 5.0
        while True:
            await asyncio.sleep(interval)
            self.draw()


def snapshot(written: Written, upstream_calls: int) -> Snapshot:
    return Snapshot(
        written.rows, written.errors, written.cost_usd, written.escalated, upstream_calls
    )
