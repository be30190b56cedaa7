"""The ledger: one row per request, written through SQLAlchemy off the hot path.

SQLite (WAL) by default; PostgreSQL (``postgresql+psycopg://...``) when several gateways share
one ledger. The schema is Alembic's (``tiergate/stores/migrations``), brought to the newest
revision when a gateway starts (:func:`migrate`; PostgreSQL serialises concurrent starts with
an advisory lock).

Requests append a row to an in-memory list (no I/O, no await) after the intent journal has it
(:mod:`tiergate.stores.journal`, which makes the row survive a ``kill -9``); a background task
writes the list in one batch every ``flush_s`` from a worker thread. Rows are inserted by
``request_id`` at most once, so replaying a journal after a crash never counts a row twice.
Refusals (budget, limits, authentication) are not rows: they are counted per key, day and
status in ``refusals``, so a flood of them cannot grow the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path
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
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url

from tiergate.stores.journal import UNSETTLED, Intent, Journal, recover

log = logging.getLogger("tiergate.stores.ledger")

metadata = MetaData()
requests_table = Table(
    "requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(160), nullable=False),  # unique: 0002; 160 wide: 0005
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
refusals_table = Table(
    "refusals",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("key_id", String(40), primary_key=True),
    Column("status", Integer, primary_key=True),
    Column("count", Integer, nullable=False),
)
MIGRATIONS = "tiergate.stores:migrations"
# Any fixed number: PostgreSQL's advisory lock that lets one gateway migrate at a time.
MIGRATION_LOCK = 7_314_523_001


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
    outcome: str  # ok, upstream_error, client_disconnected, stream_error, unsettled
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

    def values(self) -> tuple[Any, ...]:
        return _row_values(self)


ROW_FIELDS = tuple(field.name for field in fields(LedgerRow))
_row_values = attrgetter(*ROW_FIELDS)


def unsettled_row(intent: Intent) -> LedgerRow:
    """An intent with no row: charged its whole reservation (it may have been billed)."""
    return LedgerRow(
        intent.request_id,
        intent.at,
        intent.day,
        intent.key_id,
        intent.route,
        "",
        intent.model,
        intent.model,
        0,
        UNSETTLED,
        False,
        False,
        0,
        0,
        0,
        0,
        0,
        intent.reserved_usd,
        0.0,
        0.0,
        None,
    )


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL keeps it durable across app crashes
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_engine(url: str, *, migrate_schema: bool = True) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _private_file(Path(parsed.database))
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate_schema:
        migrate(engine)
    return engine


def _private_file(path: Path) -> None:
    """Spend per key is nobody else's business: the file (and SQLite's WAL beside it, which
    takes the file's mode) is the owner's alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


def migrate(engine: Engine) -> None:
    """Bring the schema to Alembic's newest revision (a ledger made before Alembic is stamped
    with the first revision, whose schema it has)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "requests" in tables and "alembic_version" not in tables:
            command.stamp(config, "0001")
        # One line of revisions: a second head (two revisions of one parent) fails here,
        # loudly, instead of applying in an order nobody chose.
        command.upgrade(config, "head")


class Ledger:
    def __init__(self, url: str, *, flush_s: float = 0.25, journal: Journal | None = None) -> None:
        self.engine = open_engine(url)
        self.dialect = self.engine.dialect.name
        self._insert_sql = _insert_sql(self.engine)
        self._flush_s = flush_s
        self.journal = journal
        self._pending: list[tuple[Any, ...]] = []
        self._refusals: Counter[tuple[str, str, int]] = Counter()
        self._write_lock = asyncio.Lock()
        self._runner: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Future[None] | None = None
        self.written = 0

    def intend(self, intent: Intent) -> None:
        """Before the upstream call: the request may be billed from here on."""
        if self.journal is not None:
            self.journal.intend(intent)

    def void(self, request_id: str) -> None:
        """A request whose intent was written but that never went upstream."""
        if self.journal is not None:
            self.journal.void(request_id)

    def unsettle(self, intent: Intent) -> None:
        """Close an intent whose call may have been billed with no answer to say what it cost:
        the row a restart would write for it, charged its whole reservation."""
        self.add(unsettled_row(intent), closes=intent.request_id)

    def add(self, row: LedgerRow, *, closes: str | None = None) -> None:
        values = row.values()
        if self.journal is not None:
            self.journal.row(row.request_id, values, closes=closes)
        self._pending.append(values)

    def refused(self, day: str, key_id: str, status: int) -> None:
        self._refusals[(day, key_id, status)] += 1

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
            refusals, self._refusals = self._refusals, Counter()
            journal = self.journal
            if journal is not None:
                journal.rotate_if_large()  # no await since taking the rows: they match
            done_segments = list(journal.closed) if journal is not None else []
            if not rows and not refusals:
                if journal is not None:
                    journal.forget(done_segments)  # their rows went in with earlier batches
                return
            write = asyncio.ensure_future(asyncio.to_thread(self._write, rows, refusals))
            try:
                await asyncio.shield(write)
            except asyncio.CancelledError:
                # The thread cannot be stopped: it finishes this write on its own. Its rows go
                # back to the queue only if that write fails, so none is written twice or lost.
                self._in_flight = write
                write.add_done_callback(lambda done: self._settle(done, rows, refusals))
                raise
            except BaseException:
                self._pending = rows + self._pending
                self._refusals.update(refusals)
                raise
            self.written += len(rows)
            if journal is not None:
                journal.forget(done_segments)

    def _settle(
        self,
        write: asyncio.Future[None],
        rows: list[tuple[Any, ...]],
        refusals: Counter[tuple[str, str, int]],
    ) -> None:
        if write.exception() is not None:
            self._pending = rows + self._pending
            self._refusals.update(refusals)
        else:
            self.written += len(rows)

    def _write(self, rows: list[tuple[Any, ...]], refusals: Counter[tuple[str, str, int]]) -> None:
        with self.engine.begin() as connection:
            if rows:
                # Straight to the driver's executemany with tuples: SQLAlchemy's per-row
                # parameter processing cost four times the insert itself (~19 us a row).
                connection.exec_driver_sql(self._insert_sql, rows)
            if refusals:
                connection.execute(
                    _count_refusals(self.dialect),
                    [
                        {"day": day, "key_id": key_id, "status": status, "count": count}
                        for (day, key_id, status), count in refusals.items()
                    ],
                )

    async def recover(self) -> int:
        """Replay journals left by gateways that died (see :mod:`tiergate.stores.journal`);
        returns how many requests it recorded that the ledger did not have."""
        if self.journal is None:
            return 0
        found = await asyncio.to_thread(recover, self.journal.folder)
        rows = [tuple(values) for values in found.rows]
        rows += [unsettled_row(intent).values() for intent in found.unsettled]
        added = 0
        if rows:
            before = await asyncio.to_thread(self.count)
            await asyncio.to_thread(self._write, rows, Counter())
            added = await asyncio.to_thread(self.count) - before
            log.warning(
                "recovered %d requests from %d journal files (%d unsettled, charged their "
                "reservation)",
                added,
                len(found.paths),
                len(found.unsettled),
            )
        self.journal.forget(found.paths)
        return added

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
        if self.journal is not None:
            self.journal.close(everything_written=not self._pending)
        self.engine.dispose()

    def count(self) -> int:
        with self.engine.connect() as connection:
            counted = connection.execute(select(func.count()).select_from(requests_table))
            return int(counted.scalar_one())

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

    def refusal_counts(self) -> dict[tuple[str, str, int], int]:
        with self.engine.connect() as connection:
            found = connection.execute(select(refusals_table))
            return {(row.day, row.key_id, row.status): int(row[3]) for row in found}


def _insert_sql(engine: Engine) -> str:
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}[engine.dialect.paramstyle]
    columns = ", ".join(ROW_FIELDS)
    values = ", ".join(marker for _ in ROW_FIELDS)
    if engine.dialect.name == "sqlite":
        return f"INSERT OR IGNORE INTO requests ({columns}) VALUES ({values})"
    return f"INSERT INTO requests ({columns}) VALUES ({values}) ON CONFLICT (request_id) DO NOTHING"


def _count_refusals(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(refusals_table)
    return statement.on_conflict_do_update(
        index_elements=["day", "key_id", "status"],
        set_={"count": refusals_table.c.count + statement.excluded["count"]},
    )
