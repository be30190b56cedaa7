"""``/v1/models`` on the gateway, and Claude model ids the price book does not list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
import yaml
from gw_helpers import HAIKU, Gateway, running_gateway, user

from tiergate.core.cost import price_usage
from tiergate.core.prices import load_price_book
from tiergate.core.usage import Usage
from tiergate.emulator import EmulatorConfig, EmulatorServer

pytest_plugins = ("gw_fixtures",)

BOOK = load_price_book(use_env=False)
NEW_SONNET = "claude-sonnet-7"
NEW_FAMILY = "claude-fable-1"
DATED_HAIKU = "claude-haiku-4-5-20260301"


def test_models_list_has_the_routes_then_the_price_book(gateway: Gateway) -> None:
    with gateway.client() as client:
        listed = list(client.models.list(limit=3))  # the SDK pages through by last_id
        route = client.models.retrieve("auto")
        model = client.models.retrieve(HAIKU)
        with pytest.raises(anthropic.NotFoundError):
            client.models.retrieve("no-such-thing")
    ids = [item.id for item in listed]
    assert ids[0] == "auto"
    assert sorted(ids[1:]) == sorted(BOOK.models)
    assert listed[0].display_name == (
        "tiergate route auto: rules over cheap claude-haiku-4-5, strong claude-sonnet-4-6"
    )
    assert route.display_name.startswith("tiergate route") and route.max_input_tokens == 200_000
    assert model.display_name == "Claude Haiku 4.5" and model.lifecycle == "active"
    assert gateway.rows() == []  # listing models is free and not metered


async def test_models_list_from_the_async_client(gateway: Gateway) -> None:
    async with gateway.async_client() as client:
        page = await client.models.list(limit=1, after_id="auto")
    assert len(page.data) == 1 and page.data[0].id in BOOK.models and page.has_more


def test_models_need_a_key(gateway: Gateway) -> None:
    with (
        pytest.raises(anthropic.AuthenticationError),
        gateway.client(key="sk-test-wrong") as client,
    ):
        client.models.list()


@pytest.fixture(scope="module")
def newer_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """An upstream that knows models the gateway's price book does not."""
    sonnet = BOOK.get("claude-sonnet-4-6")
    row = {
        "family": "sonnet",
        "input": 4.0,
        "output": 20.0,
        "context_window": 1_000_000,
        "min_cacheable_tokens": 2048,
        "forced_tool_choice": True,
        "latency": {"ttft_s": sonnet.latency.ttft_s, "output_tokens_per_s": 60},
    }
    extra = {
        "models": {
            NEW_SONNET: row,
            NEW_FAMILY: {**row, "family": "fable"},
            HAIKU: {"aliases": ["claude-haiku-4-5-20251001", DATED_HAIKU]},
        }
    }
    path = tmp_path_factory.mktemp("prices") / "newer.yaml"
    path.write_text(yaml.safe_dump(extra))
    config = EmulatorConfig(seed=4, price_book=load_price_book(path, use_env=False))
    with EmulatorServer(config) as running:
        yield running


@pytest.mark.parametrize(
    ("model", "priced_as"),
    [
        (DATED_HAIKU, HAIKU),  # a dated snapshot of a listed model: that model's price
        (NEW_SONNET, "claude-sonnet-4-6"),  # the dearest row of its family
        (NEW_FAMILY, "claude-opus-4-8"),  # a new family: the dearest row of the book
    ],
)
def test_unlisted_claude_ids_are_passed_through_and_metered(
    tmp_path: Path, newer_upstream: EmulatorServer, model: str, priced_as: str
) -> None:
    with running_gateway(tmp_path, newer_upstream.base_url) as gateway:
        with gateway.client() as client:
            raw = client.messages.with_raw_response.create(
                model=model, max_tokens=40, messages=user("Hello there")
            )
            counted = client.messages.count_tokens(model=model, messages=user("Hello there"))
        message = raw.parse()
        [row] = gateway.rows()
    assert message.model == model and raw.headers["x-tiergate-route"] == "direct"
    assert counted.input_tokens == message.usage.input_tokens
    expected = price_usage(Usage.from_api(message.usage.model_dump()), BOOK.get(priced_as))
    assert row["model"] == model and row["status"] == 200
    assert row["cost_usd"] == pytest.approx(expected.total_usd, abs=1e-9)
    assert float(raw.headers["x-tiergate-cost-usd"]) == pytest.approx(expected.total_usd, abs=1e-8)


def test_an_unknown_id_the_upstream_lacks_is_its_404(gateway: Gateway) -> None:
    with gateway.client() as client, pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="claude-sonnet-9-9", max_tokens=5, messages=user("x"))
    assert caught.value.body["error"]["message"] == "model: claude-sonnet-9-9"  # type: ignore[index]
    [row] = gateway.rows()
    assert row["outcome"] == "upstream_error" and row["cost_usd"] == 0
