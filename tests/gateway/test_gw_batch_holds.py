"""A batch's worst case is held against its key's budget from creation until its results are
read: live requests meanwhile cannot spend that room, the hold survives restarts, ``kill -9``
and other gateways on one Redis, and reading the results gives back what the batch did not use.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest
from gw_helpers import HAIKU, Gateway, config_dict, running_gateway, user
from gw_procs import GatewayProcess, gateway_processes, send, write_config

from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.emulator.clock import ManualClock
from tiergate.gateway import GatewayServer, KeyStore, parse_config
from tiergate.stores import utc_day
from tiergate.stores.ledger import Ledger
from tiergate.stores.redis_state import RedisKeyStore

pytest_plugins = ("gw_fixtures", "gw_servers")

LIVE: dict[str, Any] = {"model": HAIKU, "max_tokens": 200, "messages": user("Where is my card?")}


def batch_requests(tag: str, count: int = 3, max_tokens: int = 200) -> list[Any]:
    return [
        {
            "custom_id": f"{tag}-{index}",
            "params": {
                "model": HAIKU,
                "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": f"Route ticket {tag} {index}"}],
            },
        }
        for index in range(count)
    ]


def memory_spent(gateway: Gateway, key_id: str) -> float:
    budgets = gateway.server.app.services.budgets
    return float(gateway.server.call(lambda: budgets.spent(key_id, time.time())).spent_usd)


def ledger_spent(rows: list[dict[str, Any]], key_id: str) -> float:
    today = utc_day(time.time())
    return float(sum(r["cost_usd"] for r in rows if r["key_id"] == key_id and r["day"] == today))


def spend_until_refused(client: anthropic.Anthropic, limit: int = 40) -> int:
    """Live requests until the budget says no; how many were answered."""
    for answered in range(limit):
        try:
            client.messages.create(**LIVE)
        except anthropic.RateLimitError as error:
            assert error.response.headers["x-should-retry"] == "false"
            return answered
    raise AssertionError(f"{limit} live requests and the budget never refused one")


def usage(base_url: str, key: str) -> dict[str, Any]:
    request = urllib.request.Request(base_url + "/v1/usage", headers={"x-api-key": key})
    with urllib.request.urlopen(request, timeout=30) as response:
        found: dict[str, Any] = orjson.loads(response.read())
    return found


def test_live_spend_cannot_use_the_room_a_batch_holds(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    budget = 0.005
    with running_gateway(tmp_path, emulator.base_url, budget_usd_day=budget) as gateway:
        [owner] = gateway.store.list()
        with gateway.client() as client:
            batches = [client.messages.batches.create(requests=batch_requests(t)) for t in "ab"]
            holds = {row["request_id"]: row for row in gateway.rows(outcome="batch_hold")}
            held = sum(row["cost_usd"] for row in holds.values())
            assert set(holds) == {f"{batch.id}#hold" for batch in batches}
            assert memory_spent(gateway, owner.id) == pytest.approx(held)
            assert spend_until_refused(client) > 0
            assert ledger_spent(gateway.rows(), owner.id) <= budget
            for batch in batches:
                list(client.messages.batches.results(batch.id))
                rows = gateway.rows()
                # the running budget moves by what the ledger records, at every read
                assert memory_spent(gateway, owner.id) == pytest.approx(
                    ledger_spent(rows, owner.id), abs=1e-12
                )
            releases = gateway.rows(outcome="batch_hold_released")
            assert sorted(row["cost_usd"] for row in releases) == sorted(
                -row["cost_usd"] for row in holds.values()
            )
            batch_cost = sum(r["cost_usd"] for r in gateway.rows(route="batch", outcome="ok"))
            assert 0 < batch_cost < held
            # what the batches did not use is back: live requests run again
            client.messages.create(**LIVE)
        rows = gateway.rows()
        spent, running = ledger_spent(rows, owner.id), memory_spent(gateway, owner.id)
        print(f"one gateway: ${spent:.6f} of ${budget} in the ledger, ${running:.6f} running")
        assert spent <= budget
        assert running == pytest.approx(spent)
        report = usage(gateway.base_url, gateway.key)
        assert report["batch_holds"]["open"] == 0


@contextmanager
def gateway_on(folder: Path, upstream: str, key: str) -> Iterator[Gateway]:
    """A gateway over an existing folder (its keys, ledger and journal), as after a restart."""
    config = parse_config(config_dict(upstream), folder, {})
    with GatewayServer(config) as server:
        yield Gateway(server, key, KeyStore(folder / "keys.json"), folder)


def test_a_hold_survives_a_restart(tmp_path: Path, emulator: EmulatorServer) -> None:
    budget = 0.004
    with running_gateway(tmp_path, emulator.base_url, budget_usd_day=budget) as gateway:
        [owner] = gateway.store.list()
        with gateway.client() as client:
            batch = client.messages.batches.create(requests=batch_requests("restart"))
        [hold] = gateway.rows(outcome="batch_hold")
    with gateway_on(tmp_path, emulator.base_url, gateway.key) as restarted:
        assert memory_spent(restarted, owner.id) == pytest.approx(hold["cost_usd"])
        report = usage(restarted.base_url, restarted.key)
        assert report["batch_holds"]["open"] == 1
        assert report["batch_holds"]["held_usd"] == pytest.approx(hold["cost_usd"])
        assert report["batch_holds"]["batches"][0]["batch_id"] == batch.id
        assert report["total"]["spend_usd"] == 0  # held, not spent
        with restarted.client() as client:
            spend_until_refused(client)
            list(client.messages.batches.results(batch.id))
        rows = restarted.rows()
        assert ledger_spent(rows, owner.id) <= budget
        assert memory_spent(restarted, owner.id) == pytest.approx(ledger_spent(rows, owner.id))
        assert usage(restarted.base_url, restarted.key)["batch_holds"]["open"] == 0


def test_a_hold_survives_kill_9(tmp_path: Path, emulator: EmulatorServer) -> None:
    budget = 0.004
    config = write_config(tmp_path, emulator.base_url, journal="journal")  # ledger_flush_s: 60
    _, key = KeyStore(tmp_path / "keys.json").create("killed", budget_usd_day=budget)
    gateway = GatewayProcess(config, 0, tmp_path / "gateway.log")
    from gw_helpers import free_port

    gateway.port = free_port()
    gateway.start()
    with anthropic.Anthropic(api_key=key, base_url=gateway.base_url, max_retries=0) as client:
        batch = client.messages.batches.create(requests=batch_requests("kill"))
    gateway.kill()
    gateway.port = free_port()
    gateway.start()
    try:
        held = usage(gateway.base_url, key)["batch_holds"]
        assert held["open"] == 1 and held["batches"][0]["batch_id"] == batch.id
        with anthropic.Anthropic(api_key=key, base_url=gateway.base_url, max_retries=0) as client:
            spend_until_refused(client)
            list(client.messages.batches.results(batch.id))
    finally:
        gateway.stop()
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    rows = ledger.rows()
    ledger.engine.dispose()
    [hold] = [row["cost_usd"] for row in rows if row["outcome"] == "batch_hold"]
    assert hold == pytest.approx(held["held_usd"])
    assert sum(row["cost_usd"] for row in rows) <= budget


def test_two_gateways_on_one_redis_see_the_hold(
    fresh_redis: str, fresh_postgres: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    budget = 0.004
    owner, key = RedisKeyStore(fresh_redis).create("fleet", budget_usd_day=budget)
    shared = fresh_postgres  # a fleet's ledger: batch rows' ids are up to 98 characters
    configs = [
        write_config(
            tmp_path / f"replica-{index}",
            emulator.base_url,
            state=fresh_redis,
            ledger=shared,
            journal="journal",
            ledger_flush_s=0.2,
        )
        for index in range(2)
    ]
    with gateway_processes(configs, tmp_path) as (first, second):
        with anthropic.Anthropic(api_key=key, base_url=first.base_url, max_retries=0) as client:
            long_ids = batch_requests("fleet-" + "x" * 56, count=4)  # custom_ids of 64
            batch = client.messages.batches.create(requests=long_ids)
        # Live traffic comes later (a batch runs for hours): by then the first gateway has
        # handed its idle lease back, and only the hold keeps the room.
        leases_back(fresh_redis, owner.id)

        async def live_on_second() -> int:
            async with aiohttp.ClientSession() as session:
                for answered in range(40):
                    if (await send(session, second.base_url, key, LIVE)).status == 429:
                        return answered
            raise AssertionError("the budget never refused a live request")

        assert asyncio.run(live_on_second()) > 0
        with anthropic.Anthropic(api_key=key, base_url=second.base_url, max_retries=0) as client:
            list(client.messages.batches.results(batch.id))
            list(client.messages.batches.results(batch.id))  # charged once
    ledger = Ledger(shared)
    rows = ledger.rows()
    ledger.engine.dispose()
    spent = sum(row["cost_usd"] for row in rows)
    print(f"two gateways, one Redis: ${spent:.6f} of ${budget} ({spent / budget:.2f}x)")
    assert spent <= budget
    assert len([row for row in rows if row["outcome"] == "batch_hold_released"]) == 1
    # every replica stopped: Redis holds what the ledger records, the hold given back
    assert budget_in_redis(fresh_redis, owner.id)[0] == pytest.approx(spent, abs=1e-8)


def budget_in_redis(url: str, key_id: str) -> tuple[float, float]:
    """The key's committed spend and what gateways lease of its budget today, in dollars."""
    import redis

    store = redis.Redis.from_url(url)
    found = store.hmget(f"tg:budget:{utc_day(time.time())}:{key_id}", ["c", "l"])
    store.close()
    return int(found[0] or 0) / 1e9, int(found[1] or 0) / 1e9


def leases_back(url: str, key_id: str) -> None:
    deadline = time.monotonic() + 30
    while budget_in_redis(url, key_id)[1] > 0:
        assert time.monotonic() < deadline, "a gateway kept its idle lease for 30 s"
        time.sleep(0.1)


HOUR = 3600


@pytest.fixture
def slow_batches() -> Iterator[tuple[EmulatorServer, ManualClock]]:
    """Batches that would take 48 hours: the API expires what is not done after 24."""
    clock = ManualClock(time.time())
    config = EmulatorConfig(seed=9, batch_processing_s=48 * HOUR, clock=clock)
    with EmulatorServer(config) as running:
        yield running, clock


def test_cancel_expiry_and_delete_release_what_the_batch_did_not_use(
    tmp_path: Path, slow_batches: tuple[EmulatorServer, ManualClock]
) -> None:
    upstream, clock = slow_batches
    with running_gateway(tmp_path, upstream.base_url, budget_usd_day=1.0) as gateway:
        [owner] = gateway.store.list()

        def outcomes(batch_id: str, tag: str, count: int) -> list[str]:
            rows = {row["request_id"]: row for row in gateway.rows(route="batch")}
            assert f"{batch_id}#release" in rows  # the hold went back
            return [rows[f"{batch_id}/{tag}-{index}"]["outcome"] for index in range(count)]

        with gateway.client() as client:
            canceled = client.messages.batches.create(requests=batch_requests("c", count=4))
            clock.advance(12 * HOUR)  # a quarter processed
            assert client.messages.batches.cancel(canceled.id).processing_status == "canceling"
            assert gateway.rows(route="batch", outcome="ok") == []
            # seen ended: metered now, the processed quarter charged, the rest given back
            assert client.messages.batches.retrieve(canceled.id).processing_status == "ended"
            assert outcomes(canceled.id, "c", 4) == ["ok", "canceled", "canceled", "canceled"]
            charged = sum(r["cost_usd"] for r in gateway.rows(route="batch", outcome="ok"))
            [hold] = gateway.rows(request_id=f"{canceled.id}#hold")
            assert 0 < charged < hold["cost_usd"]
            assert memory_spent(gateway, owner.id) == pytest.approx(charged)

            expiring = client.messages.batches.create(requests=batch_requests("e", count=2))
            deleted = client.messages.batches.create(requests=batch_requests("d", count=2))
            clock.advance(24 * HOUR)  # both half done when they run out of time
            assert client.messages.batches.retrieve(expiring.id).processing_status == "ended"
            assert outcomes(expiring.id, "e", 2) == ["ok", "expired"]
            client.messages.batches.delete(deleted.id)  # its results go: metered first
            assert outcomes(deleted.id, "d", 2) == ["ok", "expired"]
        assert memory_spent(gateway, owner.id) == pytest.approx(
            ledger_spent(gateway.rows(), owner.id)
        )
        assert usage(gateway.base_url, gateway.key)["batch_holds"]["open"] == 0


def test_a_batch_the_budget_left_cannot_cover_is_clamped_by_default(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    budget = 0.003  # the batch's worst case at 4,000 tokens each is about $0.03
    with running_gateway(tmp_path, emulator.base_url, budget_usd_day=budget) as gateway:
        [owner] = gateway.store.list()
        with gateway.client() as client:
            created = client.messages.batches.with_raw_response.create(
                requests=batch_requests("clamped", count=3, max_tokens=4000)
            )
            cap = int(created.headers["x-tiergate-max-tokens-clamped"])
            assert 64 <= cap < 4000
            batch = created.parse()
            [hold] = gateway.rows(outcome="batch_hold")
            assert hold["cost_usd"] <= budget
            results = list(client.messages.batches.results(batch.id))
        for line in results:
            assert line.result.type == "succeeded"
            assert line.result.message.usage.output_tokens <= cap
        rows = gateway.rows()
        assert 0 < ledger_spent(rows, owner.id) <= budget
        assert memory_spent(gateway, owner.id) == pytest.approx(ledger_spent(rows, owner.id))


def test_the_refuse_policy_refuses_a_batch_the_holds_leave_no_room_for(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    budget = 0.003  # room for one batch's worst case (about $0.0017), not for two
    with (
        running_gateway(
            tmp_path, emulator.base_url, budget_usd_day=budget, budget={"policy": "refuse"}
        ) as gateway,
        gateway.client() as client,
    ):
        first = client.messages.batches.create(requests=batch_requests("first"))
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.batches.create(requests=batch_requests("second"))
        headers = caught.value.response.headers
        assert headers["x-should-retry"] == "false" and int(headers["retry-after"]) > 0
        assert "budget_usd_day" in caught.value.message
        assert len(gateway.rows(outcome="batch_hold")) == 1
        list(client.messages.batches.results(first.id))  # the first one's hold goes back
        client.messages.batches.create(requests=batch_requests("second"))


async def test_a_hold_killed_at_any_moment_is_replayed_once(tmp_path: Path) -> None:
    """The creation's intent is closed by the hold's row (keyed by the batch id it did not know
    yet); a creation killed before the upstream answered is charged its whole hold."""
    import os

    from tiergate.stores.journal import Intent, Journal
    from tiergate.stores.ledger import LedgerRow

    day = utc_day(time.time())
    dead = Journal(tmp_path / "journal", "deadrun")
    dead.intend(Intent("req_created", 1.0, day, "key_1", "batch", HAIKU, 0.003))
    hold = LedgerRow(
        "msgbatch_01X#hold", 1.0, day, "key_1", "batch", "batch", HAIKU, HAIKU, 200,
        "batch_hold", False, False, 0, 0, 0, 0, 0, 0.003, 0.0, 1.0, None,
    )  # fmt: skip
    dead.row(hold.request_id, hold.values(), closes="req_created")
    dead.intend(Intent("req_killed", 2.0, day, "key_1", "batch", HAIKU, 0.004))
    dead._map.close()  # what the kernel does when the process is killed
    os.close(dead._descriptor)

    ledger = Ledger(
        f"sqlite:///{tmp_path / 'ledger.db'}", journal=Journal(tmp_path / "journal", "new")
    )
    assert await ledger.recover() == 2
    found = {row["request_id"]: row for row in ledger.rows()}
    assert set(found) == {"msgbatch_01X#hold", "req_killed"}
    assert found["req_killed"]["outcome"] == "unsettled"
    assert ledger.spent_on(day) == {"key_1": pytest.approx(0.007)}
    await ledger.close()


async def test_redis_replicas_share_a_hold_and_its_release(fresh_redis: str) -> None:
    from tiergate.stores import ApiKey, BudgetExceeded
    from tiergate.stores.redis_state import RedisBudgets, connect

    key = ApiKey("key_hold", "hold", "h", 0.0, budget_usd_day=1.0)
    now = time.time()
    day = utc_day(now)
    clients = [connect(fresh_redis) for _ in range(2)]
    holder, other = (RedisBudgets(client) for client in clients)
    await holder.hold(key, 0.6, now)
    with pytest.raises(BudgetExceeded):
        await other.reserve(key, 0.5, now)
    # The results are read on the other replica before the holder reported its spend: the
    # batch cost $0.1, so $0.5 of the hold comes back to everyone at once.
    assert await other.claim("batch-results:b1") and not await holder.claim("batch-results:b1")
    await other.charge(key.id, day, 0.1 - 0.6, now)
    reservation = await other.reserve(key, 0.5, now)
    other.settle(reservation, 0.25)
    await holder.charge(key.id, "2000-01-01", -5.0, now)  # a day that is over is closed
    for budgets in (holder, other):
        await budgets.close()
    committed, leased = budget_in_redis(fresh_redis, key.id)
    assert committed == pytest.approx(0.35) and leased == 0
    for client in clients:
        await client.aclose()


async def test_memory_budgets_release_a_hold_on_its_own_day_only() -> None:
    from tiergate.stores import ApiKey, MemoryBudgets

    key = ApiKey("key_hold", "hold", "h", 0.0, budget_usd_day=1.0)
    now = time.time()
    budgets = MemoryBudgets(now=now)
    await budgets.hold(key, 0.6, now)
    assert (await budgets.spent(key.id, now)).spent_usd == pytest.approx(0.6)
    await budgets.charge(key.id, utc_day(now), 1.5 - 0.6, now)  # past the budget: charged
    assert (await budgets.spent(key.id, now)).spent_usd == pytest.approx(1.5)
    await budgets.charge(key.id, utc_day(now - 86400), -1.0, now)  # yesterday's: closed
    assert (await budgets.spent(key.id, now)).spent_usd == pytest.approx(1.5)
    assert await budgets.claim("b1") and not await budgets.claim("b1")


@contextmanager
def failing_batches_upstream(status: int | None) -> Iterator[tuple[str, list[str]]]:
    """An upstream that answers every batch creation with ``status`` (``None``: reads the
    request and hangs up without an answer, as after a lost reply); it records the paths."""
    import http.server
    import threading

    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.append(self.path)
            if status is None:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            body = orjson.dumps({"type": "error", "error": {"type": "api_error", "message": "x"}})
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "kept"),
    [(400, False), (429, False), (500, True), (None, True)],
    ids=["refused-400", "refused-429", "server-error", "no-answer"],
)
def test_a_failed_creation_keeps_the_hold_unless_the_api_refused_it(
    tmp_path: Path, status: int | None, kept: bool
) -> None:
    """After a server error or no answer the batch may exist (and be billed): its worst case
    stays spent, as an unsettled row, and the POST is never sent twice; a 4xx means no batch."""
    with (
        failing_batches_upstream(status) as (upstream, seen),
        running_gateway(tmp_path, upstream, budget_usd_day=1.0) as gateway,
    ):
        [owner] = gateway.store.list()
        with gateway.client() as client, pytest.raises(anthropic.APIError):
            client.messages.batches.create(requests=batch_requests("x"))
        assert seen == ["/v1/messages/batches"]  # once: gateway retries are off for it
        unsettled = gateway.rows(outcome="unsettled")
        running = memory_spent(gateway, owner.id)
        if kept:
            assert len(unsettled) == 1 and unsettled[0]["cost_usd"] > 0
            assert running == pytest.approx(unsettled[0]["cost_usd"])
            assert ledger_spent(gateway.rows(), owner.id) == pytest.approx(running)
        else:
            assert unsettled == [] and running == pytest.approx(0.0, abs=1e-12)
