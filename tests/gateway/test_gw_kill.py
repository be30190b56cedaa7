"""``kill -9`` under load: every answer a client got, and every upstream call, is in the ledger.

A real gateway process serves concurrent clients and is killed with SIGKILL at a random moment,
several times over the same ledger and journal. Afterwards the ledger must hold every request
a client got a 200 for, at the cost the client was told, and at least one row (settled, or
``unsettled`` and charged its reservation) for every call the upstream received.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from gw_helpers import HAIKU, user
from gw_procs import Answer, GatewayProcess, load, write_config

from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.gateway import KeyStore
from tiergate.stores.ledger import Ledger

pytest_plugins = ("gw_fixtures",)

KILLS = 4


@pytest.fixture
def slow_emulator() -> Iterator[EmulatorServer]:
    """Answers take tens of milliseconds, so a kill finds requests in flight."""
    with EmulatorServer(EmulatorConfig(seed=11, latency_scale=0.02)) as running:
        yield running


async def _load_then_kill(gateway: GatewayProcess, key: str, seed: int) -> list[Answer]:
    rng = random.Random(seed)
    bodies = [
        {"model": HAIKU, "max_tokens": 60, "messages": user(f"kill test {seed} {i}")}
        for i in range(400)
    ]
    running = asyncio.ensure_future(load([gateway.base_url], key, bodies, concurrency=24))
    await asyncio.sleep(rng.uniform(0.4, 1.2))
    await asyncio.to_thread(gateway.kill)
    results = await running
    return [result for result in results if isinstance(result, Answer)]


def test_sigkill_under_load_loses_no_billed_request(
    slow_emulator: EmulatorServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path, slow_emulator.base_url, journal="journal", ledger_flush_s=0.25)
    _, key = KeyStore(tmp_path / "keys.json").create("killed", budget_usd_day=100.0)
    gateway = GatewayProcess(config, 0, tmp_path / "gateway.log")
    answered: list[Answer] = []
    from gw_helpers import free_port

    for kill in range(KILLS):
        gateway.port = free_port()
        gateway.start()  # replays what the previous run left in the journal
        answered += [a for a in asyncio.run(_load_then_kill(gateway, key, kill)) if a.status == 200]
    gateway.port = free_port()
    gateway.start()
    gateway.stop()  # a clean stop after the last replay: everything is in the ledger
    upstream_calls = slow_emulator.state.requests_served

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    rows = {row["request_id"]: row for row in ledger.rows()}
    unsettled = [row for row in rows.values() if row["outcome"] == "unsettled"]
    missing = [answer.request_id for answer in answered if answer.request_id not in rows]
    print(
        f"{KILLS} kills: {len(answered)} answers received, {len(rows)} ledger rows "
        f"({len(unsettled)} unsettled, charged their reservation), "
        f"{upstream_calls} upstream calls, {len(missing)} answers missing"
    )
    assert answered and not missing
    for answer in answered:
        assert rows[answer.request_id]["status"] == 200
        assert rows[answer.request_id]["cost_usd"] == pytest.approx(answer.cost_usd, abs=1e-8)
    assert len(rows) >= upstream_calls  # every call that may have been billed has a row
    spent = sum(row["cost_usd"] for row in rows.values())
    # (a float sum in another order may differ in its last bits)
    assert spent >= sum(answer.cost_usd or 0.0 for answer in answered) - 1e-9
    assert not list((tmp_path / "journal").glob("*.journal"))  # all replayed and cleared
    ledger.engine.dispose()
