"""The garbage collector set for a long-running server, once its start-up is done.

Measured on a saturated gateway (bench/gateway_cpu.py), the collector cost about 40 us of CPU
a request with Python's defaults, and stalled the loop for tens of milliseconds at each full
collection: every full collection walked the ~95,000 objects start-up made (modules, the price
book, SQLAlchemy, pydantic models) although none of them ever becomes garbage, and the youngest
generation's threshold (700 objects) was crossed again and again by nothing but the objects of
the requests in flight, which die a moment later anyway.

:func:`settle` collects once, then freezes what is left (``gc.freeze``: those objects are never
scanned again, and never freed, which is what long-lived start-up state is for), and raises the
youngest generation's threshold so that only real growth in tracked objects triggers a
collection. Reference cycles made while serving are still collected, just in larger batches
(at most a few megabytes of them wait). Only a process that serves calls it (``tiergate serve``);
in-process servers (tests) leave the collector alone.
"""

from __future__ import annotations

import gc

# Net allocations of tracked objects between two young collections (Python's default: 700).
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Collect, freeze what start-up left, and collect young objects less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
