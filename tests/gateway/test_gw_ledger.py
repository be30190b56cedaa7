"""The ledger on SQLite and on PostgreSQL (a real server): migrations, rows, refusals, journal."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine, text

from tiergate.stores.journal import Intent, Journal
from tiergate.stores.ledger import (
    MIGRATIONS,
    ROW_FIELDS,
    Ledger,
    LedgerRow,
    open_engine,
    requests_table,
)

pytest_plugins = ("gw_servers",)

DAY = "2026-11-24"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("fresh_postgres"))


def row(request_id: str, cost: float = 0.001, key_id: str = "key_1") -> LedgerRow:
    return LedgerRow(
        request_id, 1.0, DAY, key_id, "direct", "direct", "m", "m", 200, "ok", False, False,
        10, 1, 0, 0, 0, cost, cost * 3, 1.0, None,
    )  # fmt: skip


def migrated_to(connection: Any) -> set[str]:
    return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def newest_revisions() -> set[str]:
    """The migrations' heads: one, the newest (a second head means two revisions share a
    parent and one of them must be rebased)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    heads = set(ScriptDirectory.from_config(config).get_heads())
    assert heads == {"0005"}
    return heads


async def test_a_batch_results_request_id_fits(ledger_url: str) -> None:
    longest = "msgbatch_01" + "A" * 22 + "/" + "c" * 64  # BATCH_ID/CUSTOM_ID, 98 characters
    ledger = Ledger(ledger_url, flush_s=3600)
    ledger.add(row(longest))
    await ledger.close()
    reopened = Ledger(ledger_url)
    assert [found["request_id"] for found in reopened.rows()] == [longest]
    reopened.engine.dispose()


async def test_rows_are_written_once_and_refusals_are_counted(ledger_url: str) -> None:
    ledger = Ledger(ledger_url, flush_s=3600)
    ledger.add(row("req_1"))
    ledger.add(row("req_2", key_id="key_2"))
    for _ in range(1000):
        ledger.refused(DAY, "key_1", 429)
    ledger.refused(DAY, "-", 401)
    await ledger.flush()
    # A replayed row (the same request id) is not a second row.
    await asyncio.to_thread(ledger._write, [row("req_1").values()], Counter())
    ledger.refused(DAY, "key_1", 429)
    await ledger.close()
    reopened = Ledger(ledger_url)
    assert [found["request_id"] for found in reopened.rows()] == ["req_1", "req_2"]
    assert reopened.spent_on(DAY) == {"key_1": pytest.approx(0.001), "key_2": pytest.approx(0.001)}
    assert reopened.refusal_counts() == {(DAY, "key_1", 429): 1001, (DAY, "-", 401): 1}
    reopened.engine.dispose()


def test_a_ledger_made_before_migrations_is_upgraded(ledger_url: str) -> None:
    engine = create_engine(ledger_url)
    old = MetaData()
    table = requests_table.to_metadata(old)  # the schema as metadata.create_all made it
    old.create_all(engine)
    with engine.begin() as connection:
        for request_id in ("old_1", "old_1", "old_2"):  # a duplicate, as a cancelled flush left
            values = dict(zip(ROW_FIELDS, row(request_id).values(), strict=True))
            connection.execute(table.insert(), values)
    engine.dispose()
    migrated = open_engine(ledger_url)
    with migrated.connect() as connection:
        ids = connection.execute(text("SELECT request_id FROM requests ORDER BY id")).scalars()
        assert migrated_to(connection) == newest_revisions() and list(ids) == ["old_1", "old_2"]
    migrated.dispose()


async def test_a_dead_gateways_journal_is_replayed_conservatively(
    ledger_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "journal"
    dead = Journal(folder, "deadrun")
    answered = row("req_answered", cost=0.002)
    dead.intend(Intent("req_answered", 1.0, DAY, "key_1", "direct", "m", 0.01))
    dead.row("req_answered", answered.values())
    dead.intend(Intent("req_in_flight", 1.0, DAY, "key_1", "direct", "m", 0.05))
    dead.intend(Intent("req_refused", 1.0, DAY, "key_1", "direct", "m", 0.07))
    dead.void("req_refused")
    live = Journal(folder, "liverun")  # a neighbour still running: its lock is held
    live.intend(Intent("req_live", 1.0, DAY, "key_1", "direct", "m", 0.5))
    dead._map.close()  # what the kernel does when the process is killed
    os.close(dead._descriptor)

    ledger = Ledger(ledger_url, flush_s=3600, journal=Journal(folder, "newrun"))
    assert await ledger.recover() == 2
    assert await ledger.recover() == 0  # replayed once
    found: dict[str, Any] = {r["request_id"]: r for r in ledger.rows()}
    assert set(found) == {"req_answered", "req_in_flight"}
    assert found["req_answered"]["cost_usd"] == pytest.approx(0.002)
    assert found["req_in_flight"]["outcome"] == "unsettled"
    assert found["req_in_flight"]["cost_usd"] == pytest.approx(0.05)  # its whole reservation
    assert ledger.spent_on(DAY) == {"key_1": pytest.approx(0.052)}
    assert live.path.exists()
    await ledger.close()


def test_audit_records_live_beside_the_rows_on_both_databases(ledger_url: str) -> None:
    from tiergate.audit.records import (
        AUDIT,
        SHADOW,
        AuditRecord,
        audit_spend,
        read_records,
        write_records,
    )
    from tiergate.tiers.base import TierAnswer

    engine = open_engine(ledger_url)
    records = [
        AuditRecord(
            f"req_{index}", 10.0 + index, DAY, "tickets", kind, "local", "card_arrival", True,
            True, "where is my card", '"card_arrival"', "sonnet", '"card_arrival"', True, "done",
            0.004,
        )
        for index, kind in enumerate((AUDIT, AUDIT, SHADOW))
    ]  # fmt: skip
    sonnet = TierAnswer("sonnet", "card_arrival", {"stated_confidence": 0.9}, cost_usd=0.01,
                        stated_confidence=0.9, model="claude-sonnet-4-6")  # fmt: skip
    records[1].keep_answers([sonnet])
    write_records(engine, records)
    write_records(engine, records[:1])  # a request is audited once
    found = read_records(engine, "tickets", since=10.5)
    assert [record.request_id for record in found] == ["req_1"]
    assert found[0].reference_payload == "card_arrival" and found[0].agree is True
    # The answers kept for a refit come back whole (features, cost, model).
    assert found[0].recorded_answers() == {"sonnet": sonnet}
    spend = audit_spend(engine, DAY, DAY)
    assert spend["records"] == 3 and spend["spend_usd"] == pytest.approx(0.012)
    assert spend["by_route"]["tickets"]["by_kind"]["shadow"]["records"] == 1
    with engine.connect() as connection:
        assert migrated_to(connection) == newest_revisions()
    engine.dispose()
