"""The Claude tier through the real anthropic SDK, against the emulator on 127.0.0.1."""

from collections.abc import AsyncIterator

import anthropic
import pytest
from routing_fakes import LABELS, view

from tiergate.core.prices import load_price_book
from tiergate.datasets import Example
from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.emulator.scenario_build import scenario_from_examples
from tiergate.tiers.base import Ticket
from tiergate.tiers.claude import ClaudeTier, build_system_prefix, estimate_tokens
from tiergate.tiers.prompt import TOOL_NAME, Label

BOOK = load_price_book(use_env=False)
TICKETS = [
    Example("my new card still has not arrived", "card_arrival"),
    Example("I think I lost my card in a taxi", "lost_card"),
    Example("please give me my money back for this purchase", "refund"),
] * 1
POOL = [(f"sample ticket number {i} about {label}", label) for i in range(200) for label in LABELS]


@pytest.fixture
async def client() -> AsyncIterator[anthropic.AsyncAnthropic]:
    scenario = scenario_from_examples(TICKETS, name="tiny")
    async with EmulatorServer(EmulatorConfig(seed=3, scenario=scenario)) as emulator:
        sdk = anthropic.AsyncAnthropic(api_key="sk-test-not-a-real-key", base_url=emulator.base_url)
        async with sdk:
            yield sdk


def tier(model: str, client: anthropic.AsyncAnthropic) -> ClaudeTier:
    return ClaudeTier(
        BOOK.get(model), [Label(name) for name in LABELS], client, static_examples=POOL
    )


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "claude-sonnet-5-5"])
async def test_answers_are_labels_from_the_set_with_cost(
    client: anthropic.AsyncAnthropic, model: str
) -> None:
    claude = tier(model, client)
    body = claude.request(Ticket(TICKETS[0].text, view()))
    # Forced tool choice where the price book says the model takes it, JSON schema otherwise.
    if BOOK.get(model).forced_tool_choice:
        assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    else:
        assert (
            "tool_choice" not in body and body["output_config"]["format"]["type"] == "json_schema"
        )
    assert "<ticket>my new card still has not arrived</ticket>" in body["messages"][0]["content"]
    for example in TICKETS:
        answer = await claude.answer(Ticket(example.text, view()))
        assert answer.usable, answer.problem
        assert answer.label in LABELS
        assert answer.stated_confidence is not None and 0 <= answer.stated_confidence <= 1
        assert answer.cost_usd > 0 and answer.usage.output_tokens > 0
        assert set(answer.features) >= {
            "stated_confidence",
            "local_probability",
            "agrees_with_local",
        }


async def test_the_stable_prefix_is_padded_to_the_cache_minimum_and_read_back(
    client: anthropic.AsyncAnthropic,
) -> None:
    claude = tier("claude-haiku-4-5", client)
    assert claude.cacheable
    system = claude.request(Ticket("x"))["system"][0]
    assert system["cache_control"] == {"type": "ephemeral"}
    assert estimate_tokens(system["text"]) >= BOOK.get("claude-haiku-4-5").min_cacheable_tokens
    first = await claude.answer(Ticket(TICKETS[0].text, view()))
    second = await claude.answer(Ticket(TICKETS[1].text, view()))
    assert first.usage.cache_write_5m_tokens > 0
    assert second.usage.cache_read_tokens == first.usage.cache_write_5m_tokens
    assert second.cost_usd < first.cost_usd  # reads bill at 0.1x, writes at 1.25x


def test_without_enough_material_the_prefix_is_not_marked() -> None:
    text, cacheable = build_system_prefix(
        BOOK.get("claude-haiku-4-5"), [Label("a"), Label("b")], "", []
    )
    assert not cacheable and "- a" in text


def message(content: list[dict[str, object]], stop_reason: str = "tool_use") -> dict[str, object]:
    return {
        "model": "claude-haiku-4-5",
        "content": content,
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 100, "output_tokens": 10},
    }


@pytest.mark.parametrize(
    ("payload", "stop_reason", "problem"),
    [
        (
            [
                {
                    "type": "tool_use",
                    "name": TOOL_NAME,
                    "input": {"label": "pizza", "confidence": 0.9},
                }
            ],
            "tool_use",
            "outside the label set",
        ),
        (
            [
                {
                    "type": "tool_use",
                    "name": TOOL_NAME,
                    "input": {"label": "refund", "confidence": 7},
                }
            ],
            "tool_use",
            "not a probability",
        ),
        ([{"type": "tool_use", "name": TOOL_NAME, "input": "refund"}], "tool_use", "not an object"),
        ([{"type": "text", "text": "I cannot help with that."}], "refusal", "refused"),
        ([{"type": "text", "text": "refund"}], "end_turn", "no structured answer"),
    ],
)
def test_unusable_answers_are_marked_never_returned(
    payload: list[dict[str, object]], stop_reason: str, problem: str
) -> None:
    claude = ClaudeTier(
        BOOK.get("claude-haiku-4-5"),
        [Label(n) for n in LABELS],
        anthropic.AsyncAnthropic(api_key="sk-test-not-a-real-key"),
    )
    answer = claude.read(Ticket("t"), message(payload, stop_reason), 0.1)
    assert answer.label is None and not answer.usable
    assert answer.problem is not None and problem in answer.problem
    assert answer.cost_usd > 0  # a failed call is still paid for


def test_malformed_json_from_structured_output_is_unusable() -> None:
    claude = ClaudeTier(
        BOOK.get("claude-sonnet-5-5"),
        [Label(n) for n in LABELS],
        anthropic.AsyncAnthropic(api_key="sk-test-not-a-real-key"),
    )
    answer = claude.read(
        Ticket("t"), message([{"type": "text", "text": '{"label": "refund",'}], "max_tokens"), 0.1
    )
    assert answer.problem == "structured output is not valid JSON"


async def test_an_api_error_after_retries_is_unusable() -> None:
    config = EmulatorConfig(api_keys=frozenset({"sk-test-the-right-key"}))
    async with (
        EmulatorServer(config) as emulator,
        anthropic.AsyncAnthropic(api_key="sk-test-a-wrong-key", base_url=emulator.base_url) as sdk,
    ):
        answer = await tier("claude-haiku-4-5", sdk).answer(Ticket("t", view()))
    assert answer.label is None and answer.problem == "api error: AuthenticationError"
