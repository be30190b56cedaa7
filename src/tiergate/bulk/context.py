"""What every part of a bulk run shares: route pieces, the journal, the transport, the gate."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tiergate.bulk.gate import UpstreamGate
from tiergate.bulk.journal import Journal
from tiergate.bulk.rows import Row
from tiergate.bulk.tier import JournaledTier, Missing
from tiergate.core.prices import PriceBook
from tiergate.routing.engine import LocalViewer, Router
from tiergate.routing.policy import TierPolicy
from tiergate.routing.route import Route
from tiergate.tiers.anthropic import AnthropicTier
from tiergate.tiers.base import LocalView
from tiergate.tiers.replay import ReplayViewer
from tiergate.transports.base import Transport

# The local model's output moves in the last bits with the batch it is computed in (padding,
# kernel shapes), and a Claude request carries the local neighbours. So rows are always viewed
# in the same company: chunks never cross a block of input lines, and a resumed run re-views a
# block from its first line. Views, hence answers, are then the same whatever was interrupted.
BLOCK_LINES = 32


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
    claude: dict[str, AnthropicTier]
    journal: Journal
    transport: Transport | None
    gate: UpstreamGate
    batch_prices: bool

    def require_transport(self) -> Transport:
        if self.transport is None:
            raise ValueError("this run has paid tiers but no transport")
        return self.transport

    async def views(self, chunk: Sequence[Row]) -> dict[int, LocalView]:
        """The local model's view of each row of a chunk, by line, from one batch."""
        if self.local is None:
            return {}
        texts = [row.text for row in chunk]
        views = await asyncio.to_thread(self.local.view, texts)
        return {row.line: view for row, view in zip(chunk, views, strict=True)}

    def router(
        self, rows: Sequence[Row], missing: dict[str, Missing], views: Mapping[int, LocalView]
    ) -> Router:
        """The engine for rows of one chunk, their views computed already; its Claude tiers
        read and write the journal."""
        lines = {row.text: row.line for row in rows}
        tiers = {
            name: JournaledTier(tier, self.journal, lines, missing[name])
            for name, tier in self.claude.items()
        }
        local = (
            ReplayViewer({row.text: views[row.line] for row in rows})
            if self.local is not None
            else None
        )
        return Router(self.route, tiers, self.policies, local, concurrency=max(1, len(rows)))


def block_of(line: int) -> int:
    return (line - 1) // BLOCK_LINES


def first_line_of_block(line: int) -> int:
    """Where reading starts to resume after ``line``: the first line of its block."""
    return block_of(line + 1) * BLOCK_LINES + 1


def opens_chunk(chunk: Sequence[Row], row: Row) -> bool:
    """Whether ``row`` must start a new chunk: another block, or a text already in this one.

    Within a chunk a text names one row, which is how the engine's tiers find it.
    """
    return bool(chunk) and (
        block_of(row.line) != block_of(chunk[0].line) or any(r.text == row.text for r in chunk)
    )
