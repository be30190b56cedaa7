"""One bulk run, start to end: claim the output, resume where it stopped, route, summarize."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiergate.bulk.batches import BatchSettings, WaveCounts, run_batches
from tiergate.bulk.context import BLOCK_LINES, BulkContext, SerialViewer, first_line_of_block
from tiergate.bulk.durable import AppendFile, read_records
from tiergate.bulk.gate import UpstreamGate
from tiergate.bulk.journal import Journal
from tiergate.bulk.live import run_live
from tiergate.bulk.progress import Ticker, snapshot
from tiergate.bulk.rows import count_rows, read_rows
from tiergate.bulk.state import RunFiles, claim, manifest_for
from tiergate.bulk.summary import summarize
from tiergate.bulk.writer import OrderedWriter
from tiergate.core.prices import PriceBook
from tiergate.limits import RateLimits
from tiergate.progress import NO_PROGRESS, Tracker
from tiergate.routing.route import Route
from tiergate.routing.runtime import POLICY_FILE, open_router
from tiergate.tiers.anthropic import AnthropicTier
from tiergate.transports.base import Transport

MODES = ("live", "batches")


@dataclass(frozen=True)
class BulkOptions:
    route: Route
    source: Path
    output: Path
    errors: Path
    mode: str = "live"
    limits: RateLimits = field(default_factory=RateLimits)
    concurrency: int = 64
    batches: BatchSettings = field(default_factory=BatchSettings)
    tracker: Tracker = NO_PROGRESS  # one stage: the rows, as they are written


@dataclass(frozen=True)
class BulkResult:
    resumed_after_line: int
    summary: dict[str, Any]


async def run_bulk(
    options: BulkOptions, book: PriceBook, transport: Transport | None
) -> BulkResult:
    if options.mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {options.mode!r}")
    route = options.route
    files = RunFiles(options.output, options.errors)
    manifest = manifest_for(options.source, route.artifacts / POLICY_FILE, route.name, options.mode)
    resume = claim(files, manifest)
    base = open_router(route, book, transport if route.claude_tiers else None)
    claude: dict[str, AnthropicTier] = {}
    for name, tier in base.tiers.items():
        if not isinstance(tier, AnthropicTier):
            raise TypeError(f"tier {name} is not served by the Anthropic API (bulk runs need it)")
        claude[name] = tier
    journal = Journal(files.journal, after_line=resume)
    gate = UpstreamGate(options.limits, options.concurrency)
    context = BulkContext(
        route=route,
        book=book,
        policies=base.policies,
        local=SerialViewer(base.local) if base.local is not None else None,
        claude=claude,
        journal=journal,
        transport=transport,
        gate=gate,
        batch_prices=options.mode == "batches",
    )
    # A window wider than a chunk (live) or a segment (batches), so that waiting for a slot
    # always waits for rows already on their way.
    window = (
        options.batches.segment_rows + BLOCK_LINES
        if options.mode == "batches"
        else max(8 * options.concurrency, 4 * BLOCK_LINES)
    )
    writer = OrderedWriter(
        AppendFile(files.output),
        AppendFile(files.errors),
        window,
        on_written=lambda line: journal.forget(line, route.claude_tiers),
        sync_also=journal.sync,
    )
    waves = WaveCounts()

    def upstream_calls() -> int:
        return gate.calls if options.mode == "live" else waves.requests_sent

    total = count_rows(options.source)
    done_before = count_rows(options.source, up_to_line=resume)
    description = f"{route.name} ({options.mode})"
    with options.tracker.stage(description, total, unit="rows", done=done_before) as stage:
        ticker = Ticker(stage, lambda: snapshot(writer.written, upstream_calls()))
        ticking = asyncio.create_task(ticker.run())
        started = time.perf_counter()
        items = read_rows(options.source, after_line=first_line_of_block(resume) - 1)
        try:
            if options.mode == "live":
                await run_live(context, items, writer, done_through=resume)
            else:
                await run_batches(
                    context, items, writer, options.batches, waves, done_through=resume
                )
        finally:
            ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticking
            writer.sync()
            writer.output.close()
            writer.errors.close()
            journal.close()
        elapsed = time.perf_counter() - started
        ticker.tick()
    summary = summarize(
        route,
        options.source,
        options.output,
        mode=options.mode,
        errors=sum(1 for _ in read_records(options.errors)),
        elapsed_s=elapsed,
        rows_this_run=writer.written.rows,
        upstream_calls=upstream_calls(),
    )
    summary["resumed_after_line"] = resume
    return BulkResult(resume, summary)
