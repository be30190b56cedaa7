"""A Claude model as a tier: the classify task's requests, through the HTTP transport, against
the emulator on 127.0.0.1."""

from collections.abc import AsyncIterator

import pytest
from routing_fakes import LABELS, view

from tiergate.core.prices import load_price_book
from tiergate.core.tokens import estimate_tokens
from tiergate.datasets import Example
from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.emulator.scenario_build import scenario_from_examples
from tiergate.tasks.base import Context, Item
from tiergate.tasks.classify import ClassifyTask, Label
from tiergate.tiers.anthropic import AnthropicTier
from tiergate.transports import Transport, anthropic_transport

TOOL_NAME = ClassifyTask.tool_name

BOOK = load_price_book(use_env=False)
TICKETS = [
    Example("my new card still has not arrived", "card_arrival"),
    Example("I think I lost my card in a taxi", "lost_card"),
    Example("please give me my money back for this purchase", "refund"),
] * 1
POOL = [(f"sample ticket number {i} about {label}", label) for i in range(200) for label in LABELS]


@pytest.fixture
async def client() -> AsyncIterator[Transport]:
    scenario = scenario_from_examples(TICKETS, name="tiny")
    async with EmulatorServer(EmulatorConfig(seed=3, scenario=scenario)) as emulator:
        transport = anthropic_transport(emulator.base_url, "sk-test-not-a-real-key")
        yield transport
        await transport.aclose()


def task() -> ClassifyTask:
    return ClassifyTask([Label(name) for name in LABELS], padding_examples=POOL)


def tier(model: str, client: Transport) -> AnthropicTier:
    return AnthropicTier(BOOK.get(model), task(), client)


def ticket(text: str) -> tuple[Item, Context]:
    return Item(text), Context(view())


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "claude-sonnet-5-5"])
async def test_answers_are_labels_from_the_set_with_cost(client: Transport, model: str) -> None:
    claude = tier(model, client)
    body = claude.request(*ticket(TICKETS[0].text))
    # Forced tool choice where the price book says the model takes it, JSON schema otherwise.
    if BOOK.get(model).forced_tool_choice:
        assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    else:
        assert (
            "tool_choice" not in body and body["output_config"]["format"]["type"] == "json_schema"
        )
    assert "<ticket>my new card still has not arrived</ticket>" in body["messages"][0]["content"]
    for example in TICKETS:
        answer = await claude.answer(*ticket(example.text))
        assert answer.usable, answer.problem
        assert answer.payload in LABELS
        assert answer.stated_confidence is not None and 0 <= answer.stated_confidence <= 1
        assert answer.cost_usd > 0 and answer.usage.output_tokens > 0
        assert set(answer.features) >= {
            "stated_confidence",
            "local_probability",
            "agrees_with_local",
        }


async def test_the_stable_prefix_is_padded_to_the_cache_minimum_and_read_back(
    client: Transport,
) -> None:
    claude = tier("claude-haiku-4-5", client)
    assert task().system_prompt(BOOK.get("claude-haiku-4-5")).cacheable
    system = claude.request(Item("x"), Context())["system"][0]
    assert system["cache_control"] == {"type": "ephemeral"}
    assert estimate_tokens(system["text"]) >= BOOK.get("claude-haiku-4-5").min_cacheable_tokens
    first = await claude.answer(*ticket(TICKETS[0].text))
    second = await claude.answer(*ticket(TICKETS[1].text))
    assert first.usage.cache_write_5m_tokens > 0
    assert second.usage.cache_read_tokens == first.usage.cache_write_5m_tokens
    assert second.cost_usd < first.cost_usd  # reads bill at 0.1x, writes at 1.25x


def test_without_enough_material_the_prefix_is_not_marked() -> None:
    prompt = ClassifyTask([Label("a"), Label("b")]).system_prompt(BOOK.get("claude-haiku-4-5"))
    assert not prompt.cacheable and "- a" in prompt.text


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
    claude = AnthropicTier(
        BOOK.get("claude-haiku-4-5"), task(), anthropic_transport("http://127.0.0.1:9", "sk-x")
    )
    answer = claude.read(Item("t"), Context(), message(payload, stop_reason), 0.1)
    assert answer.payload is None and not answer.usable
    assert answer.problem is not None and problem in answer.problem
    assert answer.cost_usd > 0  # a failed call is still paid for


def test_malformed_json_from_structured_output_is_unusable() -> None:
    claude = AnthropicTier(
        BOOK.get("claude-sonnet-5-5"), task(), anthropic_transport("http://127.0.0.1:9", "sk-x")
    )
    answer = claude.read(
        Item("t"),
        Context(),
        message([{"type": "text", "text": '{"label": "refund",'}], "max_tokens"),
        0.1,
    )
    assert answer.problem == "structured output is not valid JSON"


async def test_an_api_error_after_retries_is_unusable() -> None:
    config = EmulatorConfig(api_keys=frozenset({"sk-test-the-right-key"}))
    async with EmulatorServer(config) as emulator:
        transport = anthropic_transport(emulator.base_url, "sk-test-a-wrong-key")
        answer = await tier("claude-haiku-4-5", transport).answer(*ticket("t"))
        await transport.aclose()
    assert answer.payload is None and answer.problem == "api error: 401 authentication_error"
