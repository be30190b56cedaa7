"""Classification routes served by the routing engine, through the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from gw_helpers import LABELS, Gateway, running_gateway, user

from tiergate.emulator import EmulatorServer

# The fixtures (emulator, gateways, the trained route) are shared as a plugin: one instance a
# session, whichever module asks first.
pytest_plugins = ("gw_fixtures",)


@pytest.fixture
def tickets_gateway(
    tmp_path: Path, emulator: EmulatorServer, trained_route: Path
) -> Iterator[Gateway]:
    routes = {"tickets": {"kind": "classify", "route": str(trained_route)}}
    with running_gateway(tmp_path, emulator.base_url, routes=routes) as gateway:
        yield gateway


def test_classify_returns_label_tier_confidence_cost_and_trace(tickets_gateway: Gateway) -> None:
    with tickets_gateway.client() as client:
        texts = ["My card still hasn't arrived, where is it?", "I forgot my PIN and it's blocked"]
        answers = [
            client.post("/v1/classify", body={"route": "tickets", "text": t}, cast_to=object)
            for t in texts
        ]
    for answer in answers:
        assert isinstance(answer, dict)
        assert answer["label"] in LABELS
        assert answer["trace"] and answer["trace"][0]["tier"] == "local"
        assert answer["tier"] in ("local", "claude-haiku-4-5", "claude-sonnet-4-6")
        assert answer["cost_usd"] >= 0
    rows = tickets_gateway.rows(route="tickets")
    assert len(rows) == 2
    for row, answer in zip(rows, answers, strict=True):
        assert isinstance(answer, dict)
        assert row["cost_usd"] == pytest.approx(answer["cost_usd"], abs=1e-12)
        assert row["tier"] == answer["tier"]
        assert row["escalated"] == answer["escalated"]


def test_a_classification_route_answers_as_a_model(tickets_gateway: Gateway) -> None:
    with tickets_gateway.client() as client:
        raw = client.messages.with_raw_response.create(
            model="tickets", max_tokens=20, messages=user("How do I top up? It failed twice.")
        )
        with client.messages.stream(
            model="tickets", max_tokens=20, messages=user("Where is my new card?")
        ) as stream:
            streamed = stream.get_final_message()
    message = raw.parse()
    text: Any = message.content[0]
    assert text.text in LABELS
    assert raw.headers["x-tiergate-route"] == "tickets"
    assert raw.headers["x-tiergate-tier"] in ("local", "claude-haiku-4-5", "claude-sonnet-4-6")
    assert float(raw.headers["x-tiergate-cost-usd"]) >= 0
    assert streamed.content[0].text in LABELS  # type: ignore[union-attr]


def test_an_unknown_classification_route_is_404(tickets_gateway: Gateway) -> None:
    with pytest.raises(anthropic.NotFoundError), tickets_gateway.client() as client:
        client.post("/v1/classify", body={"route": "nope", "text": "hi"}, cast_to=object)


def test_the_engines_claude_calls_go_through_the_gateways_upstream(
    tickets_gateway: Gateway,
) -> None:
    """One upstream stack for every route: the engine's Claude tiers are watched (and limited,
    retried, fallen back) by the same transports as a passed-through request."""
    texts = ["hello", "?", "card pin refund transfer top up", "it does not work", "help me"]
    with tickets_gateway.client() as client:
        answers: list[Any] = [
            client.post("/v1/classify", body={"route": "tickets", "text": t}, cast_to=object)
            for t in texts
        ]
    claude_calls = sum(
        1 for answer in answers for step in answer["trace"] if step["tier"] != "local"
    )
    assert claude_calls > 0, "no text escalated: pick vaguer ones"
    health = tickets_gateway.server.app.services.upstream.health
    assert health.attempts == claude_calls
