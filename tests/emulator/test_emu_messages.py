"""Plain and streamed messages, token counting and request validation, through the real SDK."""

from __future__ import annotations

import anthropic
import pytest
from conftest import FAKE_KEY, HAIKU, Serve, text_of, user

from tiergate.emulator import EmulatorServer, count_text


def test_create_returns_a_message_with_consistent_usage(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(
        model=HAIKU, max_tokens=500, messages=user("Hello there")
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.stop_reason == "end_turn"
    text = message.content[0]
    assert text.type == "text" and text.text
    assert message.usage.output_tokens == count_text(text.text)
    # "Hello there": 2 tokens + 4 per message + 3 per request, as docs/emulator.md says.
    assert message.usage.input_tokens == 9
    assert message.usage.service_tier == "standard"
    assert raw.headers["x-tiergate-emulated"] == "true"
    assert raw.headers["request-id"].startswith("req_")
    assert raw.headers["content-type"] == "application/json"


def test_answers_are_deterministic_per_seed(serve: Serve) -> None:
    texts = []
    for seed in (5, 5, 6):
        with serve(seed=seed) as running:
            sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url)
            message = sdk.messages.create(model=HAIKU, max_tokens=300, messages=user("Same prompt"))
            texts.append(text_of(message))
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_max_tokens_cuts_the_answer(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=HAIKU, max_tokens=7, messages=user("Tell me a story"))
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 7
    assert count_text(text_of(message)) == 7


def test_stop_sequence_ends_the_answer(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=HAIKU, max_tokens=1000, stop_sequences=["the"], messages=user("Tell me a story")
    )
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "the"
    assert "the" not in text_of(message)


def test_stream_text_and_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=HAIKU, max_tokens=400, messages=user("Stream it")) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1
    assert "".join(pieces) == text_of(final)
    assert final.usage.output_tokens == count_text("".join(pieces))
    assert final.stop_reason == "end_turn"
    plain = client.messages.create(model=HAIKU, max_tokens=400, messages=user("Stream it"))
    assert text_of(plain) == text_of(final)


def test_stream_event_order_and_content_type(client: anthropic.Anthropic) -> None:
    with client.messages.with_streaming_response.create(
        model=HAIKU, max_tokens=20, messages=user("Hi"), stream=True
    ) as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["request-id"].startswith("req_")
        names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


async def test_async_client_create_and_stream(emulator: EmulatorServer) -> None:
    async with anthropic.AsyncAnthropic(api_key=FAKE_KEY, base_url=emulator.base_url) as sdk:
        message = await sdk.messages.create(model=HAIKU, max_tokens=50, messages=user("Hi"))
        async with sdk.messages.stream(model=HAIKU, max_tokens=50, messages=user("Hi")) as stream:
            streamed = "".join([piece async for piece in stream.text_stream])
            final = await stream.get_final_message()
    assert text_of(message) == streamed
    assert final.usage.output_tokens == message.usage.output_tokens


async def test_async_context_manager_serves() -> None:
    async with EmulatorServer() as running:
        sdk = anthropic.AsyncAnthropic(api_key=FAKE_KEY, base_url=running.base_url)
        count = await sdk.messages.count_tokens(model=HAIKU, messages=user("one two three"))
        await sdk.close()
    assert count.input_tokens == 3 + 4 + 3


def test_count_tokens_matches_create(client: anthropic.Anthropic) -> None:
    system = "You route support tickets. Answer with one label."
    counted = client.messages.count_tokens(model=HAIKU, system=system, messages=user("My card"))
    created = client.messages.create(
        model=HAIKU, max_tokens=5, system=system, messages=user("My card")
    )
    assert counted.input_tokens == created.usage.input_tokens == 3 + count_text(system) + 4 + 2


def test_model_aliases_resolve(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="claude-haiku-4-5-20251001", max_tokens=5, messages=user("Hi")
    )
    assert message.model == "claude-haiku-4-5-20251001"


def test_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="claude-imaginary-9", max_tokens=5, messages=user("Hi"))
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"
    assert body["request_id"] == caught.value.response.headers["request-id"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": HAIKU, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": HAIKU, "max_tokens": 5, "messages": []}, "messages"),
        ({"model": HAIKU, "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]}, "role"),
        (
            {"model": HAIKU, "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]},
            "max_tokens",
        ),
    ],
)
def test_invalid_requests_get_anthropic_error_bodies(
    client: anthropic.Anthropic, body: dict[str, object], fragment: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.post("/v1/messages", body=body, cast_to=object)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["error"]["type"] == "invalid_request_error"
    assert fragment in error["error"]["message"]
    assert error["request_id"].startswith("req_")
