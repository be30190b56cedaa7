"""The ledger: one row per request, written through SQLAlchemy off the hot path.

Requests append a row to an in-memory list (no I/O, no await); a background task writes the
list in one batch every ``flush_s`` from a worker thread. Shutdown writes what is left, so no
row is lost on a clean stop. SQLite (WAL) by default; any SQLAlchemy URL, e.g. PostgreSQL with
``postgresql+psycopg://...`` when several gateways share one ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    select,
)

log = logging.getLogger("tiergate.gateway.ledger")

metadata = MetaData()
requests_table = Table(
    "requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(40), nullable=False),
    Column("at", Float, nullable=False),
    Column("day", String(10), nullable=False, index=True),
    Column("key_id", String(40), nullable=False, index=True),
    Column("route", String(100), nullable=False),
    Column("tier", String(100), nullable=False),
    Column("tiers_tried", String(400), nullable=False),
    Column("model", String(100), nullable=False),
    Column("status", Integer, nullable=False),
    Column("outcome", String(40), nullable=False),
    Column("streamed", Boolean, nullable=False),
    Column("escalated", Boolean, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cache_write_5m_tokens", Integer, nullable=False),
    Column("cache_write_1h_tokens", Integer, nullable=False),
    Column("cache_read_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("strong_only_usd", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float, nullable=True),
)


@dataclass(slots=True)
class LedgerRow:
    request_id: str
    at: float
    day: str
    key_id: str
    route: str  # the route name, or "direct" for a plain model id
    tier: str  # the tier that answered ("direct" for a plain model id)
    tiers_tried: str  # comma-separated, in order (models for direct requests)
    model: str  # the model that answered ("" when none did)
    status: int
    outcome: str  # ok, upstream_error, rejected, client_disconnected, stream_error
    streamed: bool
    escalated: bool
    input_tokens: int
    output_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    cache_read_tokens: int
    cost_usd: float
    strong_only_usd: float
    latency_ms: float
    ttft_ms: float | None


ROW_FIELDS = tuple(field.name for field in fields(LedgerRow))


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL keeps it durable across app crashes
    cursor.close()


def open_engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    return engine


class Ledger:
    def __init__(self, url: str, *, flush_s: float = 0.25) -> None:
        self.engine = open_engine(url)
        marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(
            self.engine.dialect.paramstyle
        )
        self._insert_sql = (
            None
            if marker is None
            else f"INSERT INTO {requests_table.name} ({', '.join(ROW_FIELDS)}) "
            f"VALUES ({', '.join(marker for _ in ROW_FIELDS)})"
        )
        self._flush_s = flush_s
        self._pending: list[LedgerRow] = []
        self._write_lock = asyncio.Lock()
        self._runner: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Future[None] | None = None
        self.written = 0

    def add(self, row: LedgerRow) -> None:
        self._pending.append(row)

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            try:
                await self.flush()
            except Exception:  # a failed batch is kept and retried; the server goes on
                log.exception("ledger write failed; keeping %d rows", len(self._pending))

    async def flush(self) -> None:
        async with self._write_lock:
            rows, self._pending = self._pending, []
            if not rows:
                return
            write = asyncio.ensure_future(asyncio.to_thread(self._write, rows))
            try:
                await asyncio.shield(write)
            except asyncio.CancelledError:
                # The thread cannot be stopped: it finishes this write on its own. Its rows go
                # back to the queue only if that write fails, so none is written twice or lost.
                self._in_flight = write
                write.add_done_callback(lambda done: self._settle(done, rows))
                raise
            except BaseException:
                self._pending = rows + self._pending
                raise
            self.written += len(rows)

    def _settle(self, write: asyncio.Future[None], rows: list[LedgerRow]) -> None:
        if write.exception() is not None:
            self._pending = rows + self._pending
        else:
            self.written += len(rows)

    def _write(self, rows: list[LedgerRow]) -> None:
        with self.engine.begin() as connection:
            if self._insert_sql is not None:
                # Straight to the driver's executemany with tuples: SQLAlchemy's per-row
                # parameter processing cost four times the insert itself (~19 us a row).
                values = [tuple(getattr(row, name) for name in ROW_FIELDS) for row in rows]
                connection.exec_driver_sql(self._insert_sql, values)
            else:
                dicts = [{name: getattr(row, name) for name in ROW_FIELDS} for row in rows]
                connection.execute(requests_table.insert(), dicts)

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        if self._in_flight is not None:  # a write the cancel interrupted: let it finish first
            await asyncio.wait([self._in_flight])
            self._in_flight = None
        await self.flush()
        self.engine.dispose()

    def spent_on(self, day: str) -> dict[str, float]:
        """Spend per key on a day: budgets start from it, so a restart forgets nothing."""
        table = requests_table
        query = (
            select(table.c.key_id, func.sum(table.c.cost_usd))
            .where(table.c.day == day)
            .group_by(table.c.key_id)
        )
        with self.engine.connect() as connection:
            return {key_id: float(total or 0) for key_id, total in connection.execute(query)}

    def rows(self, **equal: Any) -> list[Mapping[str, Any]]:
        """Rows matching column values (for tests and tools), oldest first."""
        query = select(requests_table).order_by(requests_table.c.id)
        for name, value in equal.items():
            query = query.where(requests_table.c[name] == value)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]
