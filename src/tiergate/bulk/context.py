"""What every part of a bulk run shares: the route's pieces, the journal, the client, the gate."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import anthropic

from tiergate.bulk.gate import UpstreamGate
from tiergate.bulk.journal import Journal
from tiergate.bulk.rows import Row
from tiergate.bulk.tier import JournaledTier, Missing
from tiergate.core.prices import PriceBook
from tiergate.routing.engine import LocalViewer, Router
from tiergate.routing.policy import TierPolicy
from tiergate.routing.route import Route
from tiergate.tiers.base import LocalView
from tiergate.tiers.claude import ClaudeTier


class SerialViewer:
    """The local model for many concurrent chunks: one batch at a time, on a worker thread.

    Encoders already use every core for one batch; two batches at once only contend.
    """

    def __init__(self, viewer: LocalViewer) -> None:
        self._viewer = viewer
        self._lock = threading.Lock()

    def view(self, texts: Sequence[str]) -> list[LocalView]:
        with self._lock:
            return self._viewer.view(texts)


@dataclass
class BulkContext:
    route: Route
    book: PriceBook
    policies: dict[str, TierPolicy]
    local: LocalViewer | None
    claude: dict[str, ClaudeTier]
    journal: Journal
    client: anthropic.AsyncAnthropic | None
    gate: UpstreamGate
    batch_prices: bool

    def router(self, rows: Sequence[Row], missing: dict[str, Missing]) -> Router:
        """The engine for one chunk, its Claude tiers reading and writing the journal."""
        lines = {row.text: row.line for row in rows}
        tiers = {
            name: JournaledTier(tier, self.journal, lines, missing[name])
            for name, tier in self.claude.items()
        }
        return Router(self.route, tiers, self.policies, self.local, concurrency=max(1, len(rows)))


def unique_text_chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    """Chunks of at most ``size`` rows in order, a new chunk wherever a text repeats."""
    chunk: list[Row] = []
    texts: set[str] = set()
    for row in rows:
        if len(chunk) >= size or row.text in texts:
            yield chunk
            chunk, texts = [], set()
        chunk.append(row)
        texts.add(row.text)
    if chunk:
        yield chunk
