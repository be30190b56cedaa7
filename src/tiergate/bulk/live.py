"""Live mode: rows stream through the engine in chunks, many chunks in flight at once.

The local model sees a chunk at a time; the Claude calls of all chunks in flight share the gate,
which keeps each model at its rate limits. The writer's window bounds the rows in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from tiergate.bulk.context import BulkContext, opens_chunk
from tiergate.bulk.outcome import error_row, outcome_row, upstream_failure
from tiergate.bulk.rows import Row, RowError
from tiergate.bulk.tier import Missing, ask_live
from tiergate.bulk.writer import OrderedWriter, Result


async def run_live(
    context: BulkContext,
    items: Iterable[Row | RowError],
    writer: OrderedWriter,
    *,
    done_through: int,
) -> None:
    """Route ``items``; rows up to line ``done_through`` are only there to be viewed with the
    rest of their block (they are in the output already)."""
    if context.claude and context.transport is None:
        raise ValueError("live mode with paid tiers needs a transport")
    missing: dict[str, Missing] = {}
    if context.transport is not None:
        missing = {
            name: ask_live(tier, context.transport, context.gate, context.journal)
            for name, tier in context.claude.items()
        }
    await _stream(context, items, writer, missing, done_through)


async def _stream(
    context: BulkContext,
    items: Iterable[Row | RowError],
    writer: OrderedWriter,
    missing: dict[str, Missing],
    done_through: int,
) -> None:
    running: set[asyncio.Task[None]] = set()
    chunk: list[Row] = []
    places: dict[int, int] = {}

    def dispatch() -> None:
        nonlocal chunk, places
        if places:
            task = asyncio.create_task(_route_chunk(context, chunk, places, missing, writer))
            running.add(task)
            task.add_done_callback(running.discard)
        chunk, places = [], {}

    for item in items:
        if isinstance(item, RowError):
            if item.line > done_through:
                writer.put(await writer.reserve(), Result(errors=(error_row(item),)))
            continue
        if opens_chunk(chunk, item):
            dispatch()
        chunk.append(item)
        if item.line > done_through:
            # Waiting here cannot deadlock: the window is wider than a chunk, and every row
            # before this chunk is on its way.
            places[item.line] = await writer.reserve()
    dispatch()
    while running:
        await asyncio.gather(*running)


async def _route_chunk(
    context: BulkContext,
    chunk: list[Row],
    places: dict[int, int],
    missing: dict[str, Missing],
    writer: OrderedWriter,
) -> None:
    rows = [row for row in chunk if row.line in places]
    try:
        views = await context.views(chunk)
        router = context.router(rows, missing, views)
        decisions = await router.decide_many([row.item for row in rows])
    except Exception as error:  # one broken chunk must not stop the file
        reason = f"routing failed: {type(error).__name__}: {error}"
        for row in rows:
            writer.put(
                places[row.line],
                Result(errors=({"line": row.line, "id": row.id, "error": reason},)),
            )
        return
    for row, decision in zip(rows, decisions, strict=True):
        failure = upstream_failure(row, decision)
        writer.put(
            places[row.line],
            Result(
                outcome_row(row, decision, context.book, batch=context.batch_prices),
                () if failure is None else (failure,),
            ),
        )
