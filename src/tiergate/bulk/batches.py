"""Batches mode: each Claude tier's share of the rows goes through the Message Batches API.

Rows are taken a segment at a time. For each Claude tier in ladder order (a wave), the engine
walks the segment with every answer recorded so far and reports, per row, the first tier still
missing; the rows missing this wave's tier become message batches (50% off). When the batches
end, their results are journaled and the next wave sees them: rows the cheap tier did not accept
go to the next tier as another batch. A final walk with every answer recorded gives the
decisions, written in input order.

Resumable: a batch id is journaled the moment it is created, so a resumed run polls it rather
than paying again; a batch whose results are all recorded is marked collected. A kill between
the API creating a batch and the id reaching the journal (a few milliseconds) leaves that one
batch orphaned: its rows are sent again, and the orphan's answers are never read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from tiergate.bulk.batch_api import batch_results, batch_status, create_batch
from tiergate.bulk.context import BulkContext, block_of, opens_chunk
from tiergate.bulk.journal import BatchRecord
from tiergate.bulk.outcome import error_row, outcome_row, upstream_failure
from tiergate.bulk.rows import Row, RowError
from tiergate.bulk.tier import PENDING, pending
from tiergate.bulk.writer import OrderedWriter, Result
from tiergate.routing.engine import Decision
from tiergate.tasks.base import Context
from tiergate.tiers.base import LocalView


@dataclass(frozen=True)
class BatchSettings:
    batch_size: int = 2000  # requests per message batch (the API allows 100,000 and 256 MB)
    segment_rows: int = 20000  # rows held in memory while their batches run
    poll_first_s: float = 1.0
    poll_max_s: float = 60.0


@dataclass
class WaveCounts:
    """What this run sent, for the progress bar."""

    batches_created: int = 0
    requests_sent: int = 0
    results_recorded: int = 0


async def run_batches(
    context: BulkContext,
    items: Iterable[Row | RowError],
    writer: OrderedWriter,
    settings: BatchSettings,
    counts: WaveCounts,
    *,
    done_through: int,
) -> None:
    """Route ``items`` a segment at a time; rows up to line ``done_through`` are only there to
    be viewed with the rest of their block."""
    if context.claude and context.transport is None:
        raise ValueError("batches mode with paid tiers needs a transport")
    for segment in _segments(items, settings.segment_rows):
        await _segment(context, segment, writer, settings, counts, done_through)


def _segments(items: Iterable[Row | RowError], size: int) -> Iterator[list[Row | RowError]]:
    """Runs of about ``size`` items, cut only between blocks (see ``BLOCK_LINES``)."""
    segment: list[Row | RowError] = []
    for item in items:
        if len(segment) >= size and block_of(item.line) != block_of(segment[-1].line):
            yield segment
            segment = []
        segment.append(item)
    if segment:
        yield segment


async def _segment(
    context: BulkContext,
    segment: list[Row | RowError],
    writer: OrderedWriter,
    settings: BatchSettings,
    counts: WaveCounts,
    done_through: int,
) -> None:
    chunks: list[list[Row]] = []
    places: dict[int, int] = {}
    for item in segment:
        if isinstance(item, RowError):
            if item.line > done_through:
                writer.put(await writer.reserve(), Result(errors=(error_row(item),)))
            continue
        if not chunks or opens_chunk(chunks[-1], item):
            chunks.append([])
        chunks[-1].append(item)
        if item.line > done_through:
            places[item.line] = await writer.reserve()
    views: dict[int, LocalView] = {}
    for chunk in chunks:
        views.update(await context.views(chunk))
    todo = [kept for chunk in chunks if (kept := [row for row in chunk if row.line in places])]
    for tier in context.route.claude_tiers:
        needing = [
            row for row, first in await _first_missing(context, todo, views) if first == tier
        ]
        await _wave(context, tier, needing, views, settings, counts)
    for row, decision in await _walk(context, todo, views):
        failure = upstream_failure(row, decision)
        writer.put(
            places[row.line],
            Result(
                outcome_row(row, decision, context.book, batch=True),
                () if failure is None else (failure,),
            ),
        )


async def _walk(
    context: BulkContext, chunks: Sequence[Sequence[Row]], views: Mapping[int, LocalView]
) -> list[tuple[Row, Decision]]:
    """The engine on recorded answers only; a tier without one answers "pending"."""
    missing = {name: pending(tier) for name, tier in context.claude.items()}
    walked: list[tuple[Row, Decision]] = []
    for chunk in chunks:
        router = context.router(chunk, missing, views)
        decisions = await router.decide_many([row.item for row in chunk])
        walked.extend(zip(chunk, decisions, strict=True))
    return walked


async def _first_missing(
    context: BulkContext, chunks: Sequence[Sequence[Row]], views: Mapping[int, LocalView]
) -> list[tuple[Row, str | None]]:
    """Per row, the first tier the engine wanted but has no answer from (None: decided)."""
    return [
        (row, next((s.tier for s in decision.trace if s.problem == PENDING), None))
        for row, decision in await _walk(context, chunks, views)
    ]


async def _wave(
    context: BulkContext,
    tier_name: str,
    rows: Sequence[Row],
    views: Mapping[int, LocalView],
    settings: BatchSettings,
    counts: WaveCounts,
) -> None:
    journal = context.journal
    lines = {row.line for row in rows}
    covered = {
        line
        for batch in journal.open_batches.values()
        if batch.tier == tier_name
        for line in batch.lines
    }
    to_send = [row for row in rows if row.line not in covered]
    for start in range(0, len(to_send), settings.batch_size):
        group = to_send[start : start + settings.batch_size]
        await _create(context, tier_name, group, views, counts)
    waiting = [
        batch
        for batch in list(journal.open_batches.values())
        if batch.tier == tier_name and lines.intersection(batch.lines)
    ]
    await asyncio.gather(*(_collect(context, batch, settings, counts) for batch in waiting))


async def _create(
    context: BulkContext,
    tier_name: str,
    rows: Sequence[Row],
    views: Mapping[int, LocalView],
    counts: WaveCounts,
) -> None:
    tier = context.claude[tier_name]
    requests = [
        {
            "custom_id": f"L{row.line}",
            "params": tier.request(row.item, Context(views.get(row.line))),
        }
        for row in rows
    ]
    batch_id = await create_batch(context.require_transport(), requests)
    context.journal.record_batch(tier_name, batch_id, tuple(row.line for row in rows))
    context.journal.sync()  # the id is what stops a resumed run from paying twice
    counts.batches_created += 1
    counts.requests_sent += len(rows)


async def _collect(
    context: BulkContext, batch: BatchRecord, settings: BatchSettings, counts: WaveCounts
) -> None:
    transport = context.require_transport()
    delay = settings.poll_first_s
    while await batch_status(transport, batch.id) != "ended":
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, settings.poll_max_s)
    journal = context.journal
    seen: set[int] = set()
    for entry in await batch_results(transport, batch.id):
        line = int(str(entry["custom_id"]).removeprefix("L"))
        seen.add(line)
        if journal.answer(line, batch.tier) is not None:
            continue  # recorded before a kill: read once, never twice
        result = entry.get("result") or {}
        kind = result.get("type")
        if kind == "succeeded":
            journal.record_answer(line, batch.tier, result["message"], 0.0)
        else:
            problem = f"batch result {kind}"
            if kind == "errored":
                problem += f": {(result.get('error') or {}).get('error', {}).get('type')}"
            journal.record_answer(line, batch.tier, None, 0.0, problem)
        counts.results_recorded += 1
    for line in set(batch.lines) - seen:
        if journal.answer(line, batch.tier) is None:
            journal.record_answer(line, batch.tier, None, 0.0, "batch result missing")
    journal.record_collected(batch.id)
    journal.sync()
