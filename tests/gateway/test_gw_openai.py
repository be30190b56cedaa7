"""The official ``openai`` SDK against the gateway's ``/v1/chat/completions``: text, system,
streaming (with usage), tools in both directions, routes as model names, errors as the SDK's
classes; each answer metered in the ledger like a Messages request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from gw_helpers import HAIKU, SONNET, Gateway, running_gateway

from tiergate.emulator import EmulatorServer

pytest_plugins = ("gw_fixtures",)

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def client(gateway: Gateway, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=key or gateway.key, base_url=gateway.base_url + "/v1", max_retries=0
    )


def test_text_with_a_system_turn_through_a_route(gateway: Gateway) -> None:
    with client(gateway) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="auto",
            messages=[
                {"role": "system", "content": "You answer in one word."},
                {"role": "user", "content": "Say hello."},
            ],
            max_completion_tokens=30,
        )
        answer = raw.parse()
    assert raw.headers["x-tiergate-route"] == "auto"
    assert raw.headers["x-tiergate-tier"] == "cheap"
    assert answer.object == "chat.completion"
    assert answer.model == HAIKU
    assert isinstance(answer.choices[0].message.content, str) and answer.choices[0].message.content
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage is not None and answer.usage.prompt_tokens > 0
    [row] = gateway.rows()
    assert row["route"] == "auto" and row["model"] == HAIKU and row["outcome"] == "ok"
    assert row["output_tokens"] == answer.usage.completion_tokens
    assert row["cost_usd"] > 0


def test_streaming_with_usage(gateway: Gateway) -> None:
    with client(gateway) as sdk:
        chunks = list(
            sdk.chat.completions.create(
                model=SONNET,
                messages=[{"role": "user", "content": "Tell me a short story."}],
                max_tokens=60,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes in (["stop"], ["length"])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    [row] = gateway.rows()
    assert row["streamed"] and row["output_tokens"] == chunks[-1].usage.completion_tokens


@pytest.mark.parametrize("stream", [False, True])
def test_tools_round_trip(gateway: Gateway, stream: bool) -> None:
    question: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    with client(gateway) as sdk:
        if stream:
            calls: dict[int, dict[str, str]] = {}
            finish = None
            for chunk in sdk.chat.completions.create(
                model=HAIKU,
                messages=question,
                tools=[WEATHER],
                tool_choice="required",
                max_tokens=200,
                stream=True,
            ):
                choice = chunk.choices[0]
                finish = choice.finish_reason or finish
                for part in choice.delta.tool_calls or []:
                    call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] = part.id or call["id"]
                    if part.function is not None:
                        call["name"] = part.function.name or call["name"]
                        call["arguments"] += part.function.arguments or ""
            assert finish == "tool_calls"
            [call] = calls.values()
            call_id, name, arguments = call["id"], call["name"], call["arguments"]
        else:
            answer = sdk.chat.completions.create(
                model=HAIKU,
                messages=question,
                tools=[WEATHER],
                tool_choice={"type": "function", "function": {"name": "get_weather"}},
                max_tokens=200,
            )
            assert answer.choices[0].finish_reason == "tool_calls"
            [tool_call] = answer.choices[0].message.tool_calls or []
            assert tool_call.type == "function"
            call_id = tool_call.id
            name, arguments = tool_call.function.name, tool_call.function.arguments
        assert name == "get_weather"
        assert isinstance(orjson.loads(arguments), dict)
        follow_up = sdk.chat.completions.create(
            model=HAIKU,
            messages=[
                *question,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": arguments},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": call_id, "content": "18 C and sunny"},
            ],
            tools=[WEATHER],
            max_tokens=100,
        )
    assert follow_up.choices[0].message.content
    assert len(gateway.rows()) == 2


def test_errors_are_the_sdks_classes(tmp_path: Path, emulator: EmulatorServer) -> None:
    with running_gateway(tmp_path, emulator.base_url, budget_usd_day=0.00001) as gateway:
        with client(gateway) as sdk:
            with pytest.raises(openai.NotFoundError) as missing:
                sdk.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
                )
            assert "neither a known Claude model nor a route" in str(missing.value)
            with pytest.raises(openai.RateLimitError) as over:
                sdk.chat.completions.create(
                    model=SONNET, messages=[{"role": "user", "content": "hi"}], max_tokens=4000
                )
            assert over.value.response.headers["x-should-retry"] == "false"
            with pytest.raises(openai.BadRequestError):
                sdk.chat.completions.create(
                    model=HAIKU, messages=[{"role": "user", "content": "hi"}], n=2
                )
        with pytest.raises(openai.AuthenticationError), client(gateway, "sk-tg-wrong") as sdk:
            sdk.chat.completions.create(model=HAIKU, messages=[{"role": "user", "content": "hi"}])
