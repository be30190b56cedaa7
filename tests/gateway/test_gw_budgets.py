"""Budgets under concurrency, the budget 429, and what the ledger and /v1/usage report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anthropic
import pytest
from gw_helpers import HAIKU, SONNET, Gateway, running_gateway, user
from hypothesis import given
from hypothesis import strategies as st

from tiergate.emulator import EmulatorServer
from tiergate.stores import ApiKey, BudgetExceeded, MemoryBudgets
from tiergate.stores.ledger import Ledger

# The fixtures (emulator, gateways, the trained route) are shared as a plugin: one instance a
# session, whichever module asks first.
pytest_plugins = ("gw_fixtures",)

NOW = 1_795_000_000.0


def test_over_budget_is_a_429_that_names_the_budget(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    with running_gateway(tmp_path, emulator.base_url, budget_usd_day=0.0001) as gateway:
        with pytest.raises(anthropic.RateLimitError) as caught, gateway.client() as client:
            client.messages.create(model=SONNET, max_tokens=1000, messages=user("expensive"))
        assert "budget_usd_day" in caught.value.message
        assert "$0.0001" in caught.value.message
        # Retrying cannot help before midnight UTC: the SDK and agents are told so.
        headers = caught.value.response.headers
        assert headers["x-should-retry"] == "false"
        assert 0 < int(headers["retry-after"]) <= 86_400
        # A refusal is counted per key and day, not written as a row.
        assert gateway.rows() == []
        [(day_key_status, count)] = gateway.refusals().items()
        assert day_key_status[2] == 429 and count == 1
        with gateway.client() as client:
            report = client.get("/v1/usage", cast_to=object)
        assert isinstance(report, dict) and report["refused"] == {"429": 1}


def test_a_concurrent_burst_does_not_overspend(tmp_path: Path, emulator: EmulatorServer) -> None:
    budget = 0.004  # room for a handful of the 50 requests' worst cases, not for all of them
    with running_gateway(tmp_path, emulator.base_url, budget_usd_day=budget) as gateway:

        async def burst() -> list[object]:
            async with gateway.async_client() as client:
                calls = [
                    client.messages.create(
                        model=HAIKU, max_tokens=150, messages=user(f"burst request {i}")
                    )
                    for i in range(50)
                ]
                return await asyncio.gather(*calls, return_exceptions=True)

        results = asyncio.run(burst())
        answered = [r for r in results if isinstance(r, anthropic.types.Message)]
        refused = [r for r in results if isinstance(r, anthropic.RateLimitError)]
        assert len(answered) + len(refused) == 50
        assert answered and refused
        rows = gateway.rows()
        spent = sum(row["cost_usd"] for row in rows)
        assert spent <= budget
        assert sum(row["status"] == 200 for row in rows) == len(answered)
        # And a later request is refused with what is left, not with the reservations.
        budgets = gateway.server.app.services.budgets
        spend = gateway.server.call(lambda: budgets.spent(rows[0]["key_id"], rows[0]["at"]))
        assert spend.reserved_usd == pytest.approx(0.0, abs=1e-12)
        assert spend.spent_usd == pytest.approx(spent, abs=1e-12)


@given(
    st.lists(
        st.tuples(st.floats(0, 0.5), st.floats(0, 1)),
        min_size=1,
        max_size=40,
    )
)
def test_spent_plus_reserved_never_exceeds_the_budget(requests: list[tuple[float, float]]) -> None:
    key = ApiKey("key_1", "k", "h", 0.0, budget_usd_day=1.0)
    budgets = MemoryBudgets(now=NOW)
    held = []
    for bound, used_share in requests:
        try:
            held.append((budgets.reserve_now(key, bound, NOW), bound * used_share))
        except BudgetExceeded as error:
            assert error.status == 429
        spend = asyncio.run(budgets.spent(key.id, NOW))
        assert spend.spent_usd + spend.reserved_usd <= 1.0 + 1e-9
        if len(held) > 2:
            reservation, actual = held.pop(0)
            budgets.settle(reservation, actual)
    for reservation, actual in held:
        budgets.settle(reservation, actual)
    assert asyncio.run(budgets.spent(key.id, NOW)).spent_usd <= 1.0 + 1e-9


def test_usage_reports_spend_tier_shares_and_savings(gateway: Gateway) -> None:
    with gateway.client() as client:
        for _ in range(3):
            client.messages.create(model="auto", max_tokens=30, messages=user("cheap one"))
        client.messages.create(
            model="auto",
            max_tokens=30,
            messages=user("hard one"),
            extra_headers={"x-tiergate-mark": "hard"},
        )
        report = client.get("/v1/usage", cast_to=object)
    assert isinstance(report, dict)
    total = report["total"]
    assert total["requests"] == 4
    assert total["tier_shares"] == {"cheap": 0.75, "strong": 0.25}
    assert 0 < total["savings_share"] < 1
    assert total["savings_usd"] == pytest.approx(total["strong_only_usd"] - total["spend_usd"])
    assert set(report["by_model"]) == {HAIKU, SONNET}
    assert list(report["by_route"]) == ["auto"]
    [(key_id, per_key)] = report["by_key"].items()
    assert key_id.startswith("key_") and per_key["requests"] == 4
    assert len(report["by_day"]) == 1


def test_metrics_are_prometheus_text(gateway: Gateway) -> None:
    with gateway.client() as client:
        client.messages.create(model="auto", max_tokens=10, messages=user("count me"))
        text = client.get("/metrics", cast_to=str)
    assert 'tiergate_requests_total{model="claude-haiku-4-5",route="auto",status="200"} 1.0' in (
        text
    )
    assert "tiergate_cost_usd_total" in text


def test_the_ledger_is_written_at_shutdown(tmp_path: Path, emulator: EmulatorServer) -> None:
    with running_gateway(tmp_path, emulator.base_url) as gateway, gateway.client() as client:
        for _ in range(5):
            client.messages.create(model=HAIKU, max_tokens=10, messages=user("keep me"))
    # The flush interval is a minute in tests: only the shutdown can have written these.
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert len(ledger.rows()) == 5


def test_a_client_gone_mid_stream_is_recorded_with_partial_usage(
    paced_gateway: Gateway,
) -> None:
    import aiohttp

    async def leave_early() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                paced_gateway.base_url + "/v1/messages",
                json={
                    "model": HAIKU,
                    "max_tokens": 400,
                    "stream": True,
                    "messages": user("a long answer please"),
                },
                headers={"x-api-key": paced_gateway.key, "anthropic-version": "2023-06-01"},
            ) as response,
        ):
            seen = b""
            while seen.count(b"content_block_delta") < 2:
                seen += await response.content.readany()
            response.close()  # hang up mid-stream

    asyncio.run(leave_early())
    rows: list[dict[str, object]] = []
    for _ in range(200):  # wait for the gateway to notice (no timing is asserted)
        rows = paced_gateway.rows()
        if rows:
            break
        asyncio.run(asyncio.sleep(0.02))
    [row] = rows
    assert row["outcome"] == "client_disconnected" and row["streamed"]
    assert row["input_tokens"] == 11
    assert 0 < row["output_tokens"] < 400  # type: ignore[operator]
    assert row["cost_usd"] > 0  # type: ignore[operator]


def test_a_revoked_key_is_refused(gateway: Gateway) -> None:
    secret = gateway.new_key("temporary")
    with gateway.client(key=secret) as client:
        client.messages.create(model="auto", max_tokens=5, messages=user("ok"))
        gateway.store.revoke("temporary")
        gateway.reload_keys()
        with pytest.raises(anthropic.AuthenticationError):
            client.messages.create(model="auto", max_tokens=5, messages=user("no"))


def test_a_key_over_its_rpm_is_a_429(gateway: Gateway) -> None:
    secret = gateway.new_key("slow", rpm=2)
    with gateway.client(key=secret) as client:
        for _ in range(2):
            client.messages.create(model="auto", max_tokens=5, messages=user("ok"))
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model="auto", max_tokens=5, messages=user("too many"))
    assert "2 requests per minute" in caught.value.message
    assert caught.value.response.headers["retry-after"]


def test_a_request_the_budget_cannot_cover_is_clamped_by_default(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    # $0.002 a day cannot cover 4,000 output tokens on Haiku ($0.02), but can cover a few
    # hundred: clamped, the request runs and spend stays within the budget.
    with running_gateway(tmp_path, emulator.base_url, budget_usd_day=0.002) as gateway:
        with gateway.client() as client:
            raw = client.messages.with_raw_response.create(
                model=HAIKU, max_tokens=4000, messages=user("a long essay please")
            )
        clamped = int(raw.headers["x-tiergate-max-tokens-clamped"])
        assert 64 <= clamped < 4000
        assert raw.parse().usage.output_tokens <= clamped
        assert sum(row["cost_usd"] for row in gateway.rows()) <= 0.002


def test_the_refuse_policy_refuses_what_the_budget_cannot_cover(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    with running_gateway(
        tmp_path, emulator.base_url, budget_usd_day=0.002, budget={"policy": "refuse"}
    ) as gateway:
        with pytest.raises(anthropic.RateLimitError) as caught, gateway.client() as client:
            client.messages.create(model=HAIKU, max_tokens=4000, messages=user("essay"))
        assert caught.value.response.headers["x-should-retry"] == "false"
        assert gateway.rows() == []
