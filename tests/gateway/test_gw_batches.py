"""Message Batches through the gateway with the official SDK: passed through, owned by the key
that created them, held against the budget, and metered at batch prices when results are read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import pytest
from gw_helpers import HAIKU, SONNET, Gateway, running_gateway

from tiergate.core.cost import price_usage
from tiergate.core.prices import load_price_book
from tiergate.core.usage import Usage
from tiergate.emulator import EmulatorServer

pytest_plugins = ("gw_fixtures",)

BOOK = load_price_book()


def request(custom_id: str, model: str, text: str = "Route this ticket: card not arrived") -> dict:  # type: ignore[type-arg]
    return {
        "custom_id": custom_id,
        "params": {
            "model": model,
            "max_tokens": 40,
            "messages": [{"role": "user", "content": text}],
        },
    }


def spent(gateway: Gateway, key_id: str) -> float:
    services = gateway.server.app.services
    return gateway.server.call(
        lambda: services.budgets.spent(key_id, __import__("time").time())
    ).spent_usd


def test_a_batch_passes_through_and_is_metered_at_batch_prices(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    with running_gateway(tmp_path, emulator.base_url, budget_usd_day=5.0) as gateway:
        [owner] = gateway.store.list()
        with gateway.client() as client:
            batch = client.messages.batches.create(
                requests=[request("a", HAIKU), request("b", "auto"), request("c", SONNET)]  # type: ignore[list-item]
            )
            assert batch.id.startswith("msgbatch")
            assert client.messages.batches.retrieve(batch.id).processing_status == "ended"
            assert batch.id in [listed.id for listed in client.messages.batches.list()]
            results = {
                line.custom_id: line.result for line in client.messages.batches.results(batch.id)
            }
            assert set(results) == {"a", "b", "c"}
            assert all(result.type == "succeeded" for result in results.values())
            rows = {row["request_id"]: row for row in gateway.rows(route="batch")}
            assert rows[batch.id]["outcome"] == "batch_created" and rows[batch.id]["cost_usd"] == 0
            expected = 0.0
            for custom_id, result in results.items():
                assert result.type == "succeeded"
                message = result.message
                cost = price_usage(
                    Usage.from_api(message.usage.model_dump()), BOOK.get(message.model), batch=True
                ).total_usd
                full = price_usage(
                    Usage.from_api(message.usage.model_dump()), BOOK.get(message.model)
                ).total_usd
                row = rows[f"{batch.id}/{custom_id}"]
                assert row["cost_usd"] == pytest.approx(cost) and cost < full
                assert row["key_id"] == owner.id and row["model"] == message.model
                expected += cost
            # the route picked its cheap tier for "b"
            assert results["b"].message.model == HAIKU  # type: ignore[union-attr]
            assert spent(gateway, owner.id) == pytest.approx(expected)
            # the hold went back when the results were read
            hold, release = rows[f"{batch.id}#hold"], rows[f"{batch.id}#release"]
            assert hold["cost_usd"] > expected and release["cost_usd"] == -hold["cost_usd"]
            # reading again charges nothing more
            list(client.messages.batches.results(batch.id))
            assert len(gateway.rows(route="batch")) == 6
            assert spent(gateway, owner.id) == pytest.approx(expected)
            client.messages.batches.cancel(batch.id)
        # another key sees neither the batch nor its results
        other = gateway.new_key("other")
        with gateway.client(other) as client:
            with pytest.raises(anthropic.NotFoundError):
                client.messages.batches.retrieve(batch.id)
            with pytest.raises(anthropic.NotFoundError):
                list(client.messages.batches.results(batch.id))
            assert batch.id not in [listed.id for listed in client.messages.batches.list()]


def test_a_batch_the_budget_cannot_cover_is_refused(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    with running_gateway(tmp_path, emulator.base_url, budget_usd_day=0.0001) as gateway:
        with gateway.client() as client, pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.batches.create(requests=[request(f"r{i}", SONNET) for i in range(50)])  # type: ignore[misc]
        assert caught.value.response.headers["x-should-retry"] == "false"
        assert gateway.rows() == []


def test_bad_batch_requests_are_400s(gateway: Gateway) -> None:
    with gateway.client() as client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            bad: Any = [{"custom_id": "x", "params": {"model": HAIKU}}]
            client.messages.batches.create(requests=bad)
        assert "requests.0.params" in caught.value.message
        with pytest.raises(anthropic.NotFoundError):
            client.messages.batches.create(requests=[request("x", "gpt-4o")])  # type: ignore[list-item]
