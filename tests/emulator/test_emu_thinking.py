"""Extended thinking: the parameter's rules, the thinking block, its signature, streaming."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from conftest import HAIKU, Serve, body_of, sdk_for, user

from tiergate.emulator import count_text

ENABLED: Any = {"type": "enabled", "budget_tokens": 1024}
TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def _refused(client: anthropic.Anthropic, **settings: Any) -> str:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=HAIKU, messages=user("Think"), **settings)
    return str(body_of(caught.value)["error"]["message"])


def test_thinking_comes_first_with_a_signature_and_counts_as_output(
    client: anthropic.Anthropic,
) -> None:
    message = client.messages.create(
        model=HAIKU, max_tokens=2000, thinking=ENABLED, messages=user("Why is the sky blue?")
    )
    thought, said = message.content
    assert thought.type == "thinking" and thought.thinking and thought.signature
    assert said.type == "text" and said.text
    thinking_tokens = count_text(thought.thinking)
    assert message.usage.output_tokens == thinking_tokens + count_text(said.text)
    details = message.usage.output_tokens_details
    assert details is not None and details.thinking_tokens == thinking_tokens


def test_the_budget_bounds_the_thought(serve: Serve) -> None:
    with serve(seed=2, filler_tokens=(3000, 3000)) as running, sdk_for(running) as client:
        message = client.messages.create(
            model=HAIKU, max_tokens=4000, thinking=ENABLED, messages=user("Think a lot")
        )
    thought = message.content[0]
    assert thought.type == "thinking"
    assert count_text(thought.thinking) <= 1024
    assert message.usage.output_tokens <= 4000


def test_thinking_does_not_change_the_answer(client: anthropic.Anthropic) -> None:
    plain = client.messages.create(model=HAIKU, max_tokens=2000, messages=user("Same"))
    thought = client.messages.create(
        model=HAIKU, max_tokens=2000, thinking=ENABLED, messages=user("Same")
    )
    assert thought.content[1] == plain.content[0]


def test_the_api_rules_on_budget_and_max_tokens(client: anthropic.Anthropic) -> None:
    small = {"type": "enabled", "budget_tokens": 1000}
    assert "greater than or equal to 1024" in _refused(client, max_tokens=5000, thinking=small)
    assert "must be greater than thinking.budget_tokens" in _refused(
        client, max_tokens=1024, thinking=ENABLED
    )
    # Interleaved thinking spreads the budget over a tool loop, so it may exceed max_tokens.
    message = client.messages.create(
        model=HAIKU,
        max_tokens=500,
        thinking={"type": "enabled", "budget_tokens": 4000},
        messages=user("Think"),
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    )
    assert message.content[0].type == "thinking"
    assert message.usage.output_tokens <= 500
    bad_type: Any = {"type": "sometimes"}
    assert "thinking.type" in _refused(client, max_tokens=2000, thinking=bad_type)


def test_thinking_may_not_force_a_tool(client: anthropic.Anthropic) -> None:
    message = _refused(
        client,
        max_tokens=2000,
        thinking=ENABLED,
        tools=TOOLS,
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert message == "Thinking may not be enabled when tool_choice forces tool use."


def test_sampling_with_thinking_follows_the_api(client: anthropic.Anthropic) -> None:
    old = {"anthropic-version": "2023-06-01"}
    assert "temperature" in _refused(
        client,
        max_tokens=2000,
        thinking=ENABLED,
        extra_body={"temperature": 0.5},
        extra_headers=old,
    )
    message = client.messages.create(
        model=HAIKU,
        max_tokens=2000,
        thinking=ENABLED,
        messages=user("Think"),
        extra_body={"temperature": 1},
        extra_headers=old,
    )
    assert message.content[0].type == "thinking"


def test_adaptive_thinking_with_display_omitted(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=HAIKU,
        max_tokens=2000,
        thinking={"type": "adaptive", "display": "omitted"},
        output_config={"effort": "low"},
        messages=user("Think quietly"),
    )
    thought = message.content[0]
    assert thought.type == "thinking" and thought.thinking == "" and thought.signature
    details = message.usage.output_tokens_details
    assert details is not None and details.thinking_tokens > 0
    disabled = client.messages.create(
        model=HAIKU, max_tokens=200, thinking={"type": "disabled"}, messages=user("Hi")
    )
    assert [block.type for block in disabled.content] == ["text"]


def test_a_tool_loop_sends_the_thinking_block_back(client: anthropic.Anthropic) -> None:
    first = client.messages.create(
        model=HAIKU, max_tokens=3000, thinking=ENABLED, tools=TOOLS, messages=user("Weather?")
    )
    thought, call = first.content
    assert thought.type == "thinking" and call.type == "tool_use"
    result: Any = {"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}

    def ask(assistant_content: list[Any]) -> anthropic.types.Message:
        return client.messages.create(
            model=HAIKU,
            max_tokens=3000,
            thinking=ENABLED,
            tools=TOOLS,
            messages=[
                *user("Weather?"),
                {"role": "assistant", "content": assistant_content},
                {"role": "user", "content": [result]},
            ],
        )

    final = ask([thought.model_dump(), call.model_dump()])
    assert [block.type for block in final.content] == ["thinking", "text"]
    with pytest.raises(anthropic.BadRequestError) as tampered:
        ask(
            [
                {**thought.model_dump(), "thinking": thought.thinking + " and more"},
                call.model_dump(),
            ]
        )
    assert "Invalid `signature` in `thinking` block" in body_of(tampered.value)["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as missing:
        ask([call.model_dump()])
    assert "must start with a thinking block" in body_of(missing.value)["error"]["message"]


def test_streamed_thinking_has_thinking_and_signature_deltas(client: anthropic.Anthropic) -> None:
    seen: list[str] = []
    with client.messages.stream(
        model=HAIKU, max_tokens=2000, thinking=ENABLED, messages=user("Stream a thought")
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                seen.append(event.delta.type)
        final = stream.get_final_message()
    assert seen.index("signature_delta") == seen.count("thinking_delta")
    assert seen[-1] == "text_delta"
    whole = client.messages.create(
        model=HAIKU, max_tokens=2000, thinking=ENABLED, messages=user("Stream a thought")
    )
    assert final.content[0].model_dump() == whole.content[0].model_dump()
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_a_thought_longer_than_max_tokens_ends_the_answer(serve: Serve) -> None:
    with serve(filler_tokens=(3000, 3000)) as running, sdk_for(running) as client:
        message = client.messages.create(
            model=HAIKU,
            max_tokens=1500,
            thinking={"type": "adaptive"},
            messages=user("Think very hard"),
        )
    assert [block.type for block in message.content] == ["thinking"]
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 1500
