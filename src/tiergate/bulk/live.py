"""Live mode: rows stream through the engine in chunks, many chunks in flight at once.

The local model sees a chunk at a time; the Claude calls of all chunks in flight share the gate,
which keeps each model at its rate limits. The writer's window bounds the rows in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from tiergate.bulk.context import BulkContext
from tiergate.bulk.outcome import error_row, outcome_row, upstream_failure
from tiergate.bulk.rows import Row, RowError
from tiergate.bulk.tier import Missing, ask_live
from tiergate.bulk.writer import OrderedWriter, Result

CHUNK_ROWS = 32


async def run_live(
    context: BulkContext, items: Iterable[Row | RowError], writer: OrderedWriter
) -> None:
    client = context.client
    missing: dict[str, Missing] = {}
    if context.claude:
        if client is None:
            raise ValueError("live mode with Claude tiers needs a client")
        missing = {
            name: ask_live(tier, client, context.gate, context.journal)
            for name, tier in context.claude.items()
        }
    running: set[asyncio.Task[None]] = set()
    chunk: list[tuple[int, Row]] = []

    def dispatch() -> None:
        nonlocal chunk
        if chunk:
            task = asyncio.create_task(_route_chunk(context, chunk, missing, writer))
            running.add(task)
            task.add_done_callback(running.discard)
            chunk = []

    for item in items:
        if writer.full:
            dispatch()  # the rows held here are what the window is waiting for
        place = await writer.reserve()
        if isinstance(item, RowError):
            writer.put(place, Result(errors=(error_row(item),)))
            continue
        if len(chunk) >= CHUNK_ROWS or any(row.text == item.text for _, row in chunk):
            dispatch()
        chunk.append((place, item))
    dispatch()
    while running:
        await asyncio.gather(*running)


async def _route_chunk(
    context: BulkContext,
    chunk: list[tuple[int, Row]],
    missing: dict[str, Missing],
    writer: OrderedWriter,
) -> None:
    rows = [row for _, row in chunk]
    try:
        router = context.router(rows, missing)
        decisions = await router.classify_many([row.text for row in rows])
    except Exception as error:  # one broken chunk must not stop the file
        for place, row in chunk:
            reason = f"routing failed: {type(error).__name__}: {error}"
            writer.put(place, Result(errors=({"line": row.line, "id": row.id, "error": reason},)))
        return
    for (place, row), decision in zip(chunk, decisions, strict=True):
        failure = upstream_failure(row, decision)
        writer.put(
            place,
            Result(
                outcome_row(row, decision, context.book, batch=context.batch_prices),
                () if failure is None else (failure,),
            ),
        )
