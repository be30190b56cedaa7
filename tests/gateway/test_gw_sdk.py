"""The official SDK, unmodified, against the gateway (the emulator upstream)."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from anthropic.types import ToolParam
from gw_helpers import HAIKU, SONNET, Gateway, user

from tiergate.core.cost import price_usage
from tiergate.core.prices import load_price_book
from tiergate.core.usage import Usage
from tiergate.emulator import EmulatorServer

# The fixtures (emulator, gateways, the trained route) are shared as a plugin: one instance a
# session, whichever module asks first.
pytest_plugins = ("gw_fixtures",)

BOOK = load_price_book()


def priced(model: str, usage: Any) -> float:
    return price_usage(Usage.from_api(usage.model_dump()), BOOK.get(model)).total_usd


def test_create_through_a_route_answers_with_the_cheap_tier(gateway: Gateway) -> None:
    with gateway.client() as client:
        raw = client.messages.with_raw_response.create(
            model="auto", max_tokens=60, messages=user("Hello there")
        )
    message = raw.parse()
    assert message.model == HAIKU
    assert raw.headers["x-tiergate-route"] == "auto"
    assert raw.headers["x-tiergate-tier"] == "cheap"
    assert raw.headers["x-tiergate-escalated"] == "false"
    assert float(raw.headers["x-tiergate-cost-usd"]) == pytest.approx(
        priced(HAIKU, message.usage), abs=1e-8
    )
    assert raw.headers["request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("settings", "tier"),
    [
        ({"extra_headers": {"x-tiergate-mark": "hard"}}, "strong"),
        ({"metadata": {"user_id": "u1", "tiergate_mark": "hard"}}, "strong"),
        ({"messages": user("long words " * 200)}, "strong"),
        ({"max_tokens": 8}, "cheap"),
    ],
)
def test_rules_pick_the_tier(gateway: Gateway, settings: dict[str, Any], tier: str) -> None:
    arguments: dict[str, Any] = {"model": "auto", "max_tokens": 60, "messages": user("Hi")}
    arguments.update(settings)
    with gateway.client() as client:
        raw = client.messages.with_raw_response.create(**arguments)
    assert raw.headers["x-tiergate-tier"] == tier
    assert raw.parse().model == (SONNET if tier == "strong" else HAIKU)


def test_a_plain_model_id_is_passed_through_and_metered(gateway: Gateway) -> None:
    with gateway.client() as client:
        raw = client.messages.with_raw_response.create(
            model=SONNET, max_tokens=40, messages=user("What is a token bucket?")
        )
    message = raw.parse()
    assert message.model == SONNET
    assert raw.headers["x-tiergate-route"] == "direct"
    [row] = gateway.rows()
    assert row["model"] == SONNET and row["status"] == 200 and row["outcome"] == "ok"
    assert row["input_tokens"] == message.usage.input_tokens
    assert row["output_tokens"] == message.usage.output_tokens
    assert row["cost_usd"] == pytest.approx(priced(SONNET, message.usage), abs=1e-12)
    assert row["strong_only_usd"] == pytest.approx(row["cost_usd"], abs=1e-12)


def test_stream_helper_and_a_ledger_row_right_to_the_token(gateway: Gateway) -> None:
    with (
        gateway.client() as client,
        client.messages.stream(model="auto", max_tokens=120, messages=user("Tell me")) as stream,
    ):
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.model == HAIKU
    assert text == final.content[0].text  # type: ignore[union-attr]
    [row] = gateway.rows()
    assert row["streamed"] and row["outcome"] == "ok"
    assert row["input_tokens"] == final.usage.input_tokens
    assert row["output_tokens"] == final.usage.output_tokens
    assert row["cost_usd"] == pytest.approx(priced(HAIKU, final.usage), abs=1e-12)
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]


def test_tool_use(gateway: Gateway) -> None:
    tool: ToolParam = {
        "name": "route_ticket",
        "description": "Route the ticket to a queue.",
        "input_schema": {
            "type": "object",
            "properties": {"queue": {"type": "string", "enum": ["cards", "loans"]}},
            "required": ["queue"],
        },
    }
    with gateway.client() as client:
        message = client.messages.create(
            model="auto",
            max_tokens=100,
            messages=user("My card is lost"),
            tools=[tool],
            tool_choice={"type": "tool", "name": "route_ticket"},
        )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "route_ticket"
    assert block.input["queue"] in ("cards", "loans")


def test_count_tokens_is_passed_through(gateway: Gateway, emulator: EmulatorServer) -> None:
    with gateway.client() as client:
        via_route = client.messages.count_tokens(model="auto", messages=user("Hello there"))
        direct = client.messages.count_tokens(model=SONNET, messages=user("Hello there"))
    assert via_route.input_tokens == direct.input_tokens == 9
    assert gateway.rows() == []  # free: nothing metered


def test_cached_prompt_costs_right_to_the_token(gateway: Gateway) -> None:
    system = [
        {
            "type": "text",
            "text": "policy " * 5000,  # well above Haiku's 4,096-token cacheable minimum
            "cache_control": {"type": "ephemeral"},
        }
    ]
    with gateway.client() as client:
        first = client.messages.create(
            model=HAIKU,
            max_tokens=30,
            system=system,  # type: ignore[arg-type]
            messages=user("first"),
            extra_headers={},
        )
        with client.messages.stream(
            model=HAIKU,
            max_tokens=30,
            system=system,  # type: ignore[arg-type]
            messages=user("second"),
        ) as stream:
            second = stream.get_final_message()
    assert first.usage.cache_creation_input_tokens and not first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    written, read = gateway.rows()
    assert written["cache_write_5m_tokens"] == first.usage.cache_creation_input_tokens
    assert read["cache_read_tokens"] == second.usage.cache_read_input_tokens
    assert read["streamed"] and read["input_tokens"] == second.usage.input_tokens
    assert written["cost_usd"] == pytest.approx(priced(HAIKU, first.usage), abs=1e-12)
    assert read["cost_usd"] == pytest.approx(priced(HAIKU, second.usage), abs=1e-12)
    assert read["cost_usd"] < written["cost_usd"] / 5  # the read is billed at 0.1x


def test_fallback_on_an_injected_529(gateway: Gateway, emulator: EmulatorServer) -> None:
    before = len(emulator.state.records("/v1/messages"))
    with gateway.client() as client:
        raw = client.messages.with_raw_response.create(
            model=SONNET,
            max_tokens=20,
            messages=user("fall back please"),
            extra_headers={"x-tiergate-fault": "529*3"},  # the three Sonnet attempts fail
        )
    assert raw.parse().model == HAIKU
    assert raw.headers["x-tiergate-fallback"] == HAIKU
    seen = emulator.state.records("/v1/messages")[before:]
    assert [record.status for record in seen] == [529, 529, 529, 200]
    [row] = gateway.rows()
    assert row["tiers_tried"] == f"{SONNET},{HAIKU}" and row["model"] == HAIKU


def test_stream_falls_back_before_the_first_byte(gateway: Gateway) -> None:
    with (
        gateway.client() as client,
        client.messages.stream(
            model=SONNET,
            max_tokens=20,
            messages=user("stream"),
            extra_headers={"x-tiergate-fault": "529*3"},
        ) as stream,
    ):
        final = stream.get_final_message()
    assert final.model == HAIKU


def test_an_error_after_the_first_byte_ends_the_stream_with_an_error_event(
    paced_gateway: Gateway,
) -> None:
    received = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        paced_gateway.client() as client,
        client.messages.stream(
            model=HAIKU,
            max_tokens=200,
            messages=user("break"),
            extra_headers={"x-tiergate-fault": "stream-error@2"},
        ) as stream,
    ):
        for text in stream.text_stream:
            received.append(text)
    assert received  # the first bytes had gone out: no fallback, an error event instead
    assert "overloaded" in str(caught.value).lower()
    [row] = paced_gateway.rows()
    assert row["outcome"] == "stream_error" and row["input_tokens"] > 0


def test_a_wrong_key_is_401(gateway: Gateway) -> None:
    with (
        pytest.raises(anthropic.AuthenticationError) as caught,
        gateway.client(key="sk-test-wrong-key") as client,
    ):
        client.messages.create(model="auto", max_tokens=5, messages=user("x"))
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert "sk-test-wrong-key" not in str(caught.value.body)


def test_bad_requests_are_400_and_404_and_charge_nothing(gateway: Gateway) -> None:
    with gateway.client() as client:
        with pytest.raises(anthropic.BadRequestError) as bad:
            client.messages.create(model="auto", max_tokens=5, messages=[])
        assert "messages" in bad.value.message
        with pytest.raises(anthropic.NotFoundError) as unknown:
            client.messages.create(model="claude-sonet-4-6", max_tokens=5, messages=user("x"))
        assert "did you mean" in unknown.value.message
    assert gateway.rows() == []


def test_a_body_over_the_limit_is_413(gateway: Gateway) -> None:
    with (
        pytest.raises(anthropic.ContentTooLargeError) as caught,
        gateway.client() as client,
    ):
        client.messages.create(model="auto", max_tokens=5, messages=user("x" * 70_000))
    assert caught.value.status_code == 413
    assert caught.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
