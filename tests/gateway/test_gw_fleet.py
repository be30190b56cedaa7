"""Several gateways on one Redis and one PostgreSQL ledger: budgets, limits and keys hold."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from gw_helpers import HAIKU, user
from gw_procs import Answer, gateway_processes, load, write_config

from tiergate.emulator import EmulatorServer
from tiergate.limits import RateLimits
from tiergate.stores import ApiKey, BudgetExceeded, Refused, utc_day
from tiergate.stores.ledger import Ledger
from tiergate.stores.redis_state import (
    RedisBudgets,
    RedisKeyStore,
    RedisUpstreamLimits,
    connect,
)

pytest_plugins = ("gw_fixtures", "gw_servers")

NOW = 1_795_000_000.0


async def test_replicas_leasing_one_budget_never_hold_more_than_it(fresh_redis: str) -> None:
    budget = 0.05
    key = ApiKey("key_fleet", "fleet", "h", 0.0, budget_usd_day=budget)
    clients = [connect(fresh_redis) for _ in range(3)]
    replicas = [RedisBudgets(client) for client in clients]
    rng = random.Random(7)
    settled = 0.0

    async def worker(budgets: RedisBudgets) -> None:
        nonlocal settled
        for _ in range(60):
            bound = rng.uniform(0.0005, 0.004)
            try:
                reservation = await budgets.reserve(key, bound, NOW)
            except BudgetExceeded as error:
                assert dict(error.headers)["x-should-retry"] == "false"
                await asyncio.sleep(0)
                continue
            await asyncio.sleep(rng.uniform(0, 0.002))
            actual = bound * rng.uniform(0.2, 1.0)
            settled += actual
            budgets.settle(reservation, actual)
            if rng.random() < 0.2:
                await budgets.sync()

    await asyncio.gather(*(worker(budgets) for budgets in replicas for _ in range(4)))
    for budgets in replicas:
        await budgets.close()
    where = f"tg:budget:{utc_day(NOW)}:{key.id}"
    committed = float(await clients[0].hget(where, "c") or 0) / 1e9
    leased = float(await clients[0].hget(where, "l") or 0) / 1e9
    assert committed == pytest.approx(settled, abs=1e-6)
    assert settled <= budget
    assert settled > budget * 0.5  # the budget, not a stuck lease, was the limit
    assert leased == 0  # every lease went back at close
    for client in clients:
        await client.aclose()


async def test_upstream_limits_are_shared_between_replicas(fresh_redis: str) -> None:
    clients = [connect(fresh_redis) for _ in range(2)]
    replicas = [
        RedisUpstreamLimits(client, RateLimits(rpm=30), {}, queue_s=0.0) for client in clients
    ]
    granted = refused = 0
    for index in range(80):
        try:
            await replicas[index % 2].acquire(HAIKU, 10, 10)
            granted += 1
        except Refused as error:
            refused += 1
            assert int(dict(error.headers)["retry-after"]) >= 1
    # 30 a minute between them (plus the trickle refilled during the test), not 30 each.
    assert 30 <= granted <= 33 and refused >= 47
    for limits, client in zip(replicas, clients, strict=True):
        await limits.close()
        await client.aclose()


def test_keys_in_redis_survive_concurrent_writers(fresh_redis: str, tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_bytes(orjson.dumps({"state": fresh_redis, "routes": {}}))
    store = RedisKeyStore(fresh_redis)
    old = [store.create(f"old-{i}")[1] for i in range(8)]
    command = [sys.executable, "-m", "tiergate", "keys"]
    started = [
        subprocess.Popen(
            [*command, "revoke", "--config", str(config), f"old-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ] + [
        subprocess.Popen(
            [*command, "create", "--config", str(config), "--name", f"new-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]
    outputs = [process.communicate(timeout=120) for process in started]
    assert all(process.returncode == 0 for process in started), [err for _, err in outputs]
    fresh = RedisKeyStore(fresh_redis)
    assert all(fresh.authenticate(secret) is None for secret in old)
    new = [out.decode().strip() for out, _ in outputs[8:]]
    assert all(fresh.authenticate(secret) is not None for secret in new)
    assert len(fresh.list()) == 16


def test_three_gateways_on_one_redis_never_overspend(
    fresh_redis: str, fresh_postgres: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    budget = 0.01
    secret = RedisKeyStore(fresh_redis).create("fleet", budget_usd_day=budget)[1]
    configs = [
        write_config(
            tmp_path / f"replica-{index}",
            emulator.base_url,
            state=fresh_redis,
            ledger=fresh_postgres,
            journal="journal",
            ledger_flush_s=0.2,
        )
        for index in range(3)
    ]
    bodies = [
        {"model": HAIKU, "max_tokens": 300, "messages": user(f"question {i} " * 20)}
        for i in range(240)
    ]
    with gateway_processes(configs, tmp_path) as gateways:
        urls = [gateway.base_url for gateway in gateways]
        results = asyncio.run(load(urls, secret, bodies, concurrency=30))
        answers = [result for result in results if isinstance(result, Answer)]
        assert len(answers) == len(bodies), [r for r in results if not isinstance(r, Answer)]
        usage = _usage(urls[0], secret)
    answered = [answer for answer in answers if answer.status == 200]
    refused = [answer for answer in answers if answer.status == 429]
    assert answered and refused and len(answered) + len(refused) == len(bodies)
    ledger = Ledger(fresh_postgres)
    rows = ledger.rows()
    spent = sum(row["cost_usd"] for row in rows)
    ratio = spent / budget
    print(f"3 replicas: spent ${spent:.6f} of ${budget} ({ratio:.2f}x), {len(answered)} answered")
    assert spent <= budget
    assert len(rows) == len(answered)  # refusals are counted, not rows
    assert {row["request_id"] for row in rows} == {answer.request_id for answer in answered}
    # /v1/usage on one replica reads the shared ledger: every replica's requests.
    assert usage["total"]["requests"] >= len(answered) - 30
    ledger.engine.dispose()


def _usage(base_url: str, key: str) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(base_url + "/v1/usage", headers={"x-api-key": key})
    with urllib.request.urlopen(request, timeout=30) as response:
        found: dict[str, Any] = orjson.loads(response.read())
    return found


async def test_a_day_redis_lost_starts_from_the_ledger(fresh_redis: str) -> None:
    key = ApiKey("key_seeded", "seeded", "h", 0.0, budget_usd_day=1.0)
    client = connect(fresh_redis)
    budgets = RedisBudgets(client, {key.id: 0.9}, utc_day(NOW))
    await budgets.start()
    with pytest.raises(BudgetExceeded):
        await budgets.reserve(key, 0.2, NOW)
    assert await budgets.reserve(key, 0.05, NOW) is not None
    await budgets.close()
    await client.aclose()
