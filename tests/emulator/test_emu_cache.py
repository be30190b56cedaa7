"""Prompt caching: write on first use, read while the TTL lasts, expire by the injected clock."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from conftest import FAKE_KEY, HAIKU, Serve, body_of

from tiergate.emulator import ManualClock, count_text

LONG_SYSTEM = "policy " * 5000  # 5,000 tokens: above Haiku 4.5's 4,096 minimum


def ask(sdk: anthropic.Anthropic, system: list[Any], question: str = "Hi") -> anthropic.types.Usage:
    return sdk.messages.create(
        model=HAIKU, max_tokens=5, system=system, messages=[{"role": "user", "content": question}]
    ).usage


def cached_system(ttl: str = "5m") -> Any:
    return [
        {"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral", "ttl": ttl}}
    ]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_write_then_read_then_expire(serve: Serve, clock: ManualClock) -> None:
    with serve(clock=clock) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url)
        written = ask(sdk, cached_system())
        clock.advance(200)
        read = ask(sdk, cached_system(), "Another question")
        clock.advance(299)  # the read refreshed the TTL: 499 s after the write, still alive
        read_again = ask(sdk, cached_system())
        clock.advance(301)
        expired = ask(sdk, cached_system())
    prefix = 3 + count_text(LONG_SYSTEM)
    assert written.cache_creation_input_tokens == prefix
    assert written.cache_creation is not None
    assert written.cache_creation.ephemeral_5m_input_tokens == prefix
    assert written.cache_read_input_tokens == 0
    assert written.input_tokens == 4 + 1  # only the message after the breakpoint
    assert read.cache_read_input_tokens == prefix and read.cache_creation_input_tokens == 0
    assert read.input_tokens == 4 + count_text("Another question")
    assert read_again.cache_read_input_tokens == prefix
    assert expired.cache_creation_input_tokens == prefix and expired.cache_read_input_tokens == 0


def test_one_hour_ttl(serve: Serve, clock: ManualClock) -> None:
    with serve(clock=clock) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url)
        written = ask(sdk, cached_system("1h"))
        clock.advance(3000)
        read = ask(sdk, cached_system("1h"))
        clock.advance(3601)
        expired = ask(sdk, cached_system("1h"))
    assert written.cache_creation is not None
    assert written.cache_creation.ephemeral_1h_input_tokens == written.cache_creation_input_tokens
    assert written.cache_creation.ephemeral_5m_input_tokens == 0
    assert read.cache_read_input_tokens == written.cache_creation_input_tokens
    assert expired.cache_read_input_tokens == 0 and expired.cache_creation_input_tokens


def test_short_prefix_is_silently_not_cached(client: anthropic.Anthropic) -> None:
    short = [{"type": "text", "text": "short", "cache_control": {"type": "ephemeral"}}]
    for _ in range(2):
        usage = ask(client, short)
        assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_minimum_comes_from_the_price_book(client: anthropic.Anthropic) -> None:
    # 1,500 tokens: under Haiku 4.5's 4,096, over Sonnet 4.5's 1,024.
    medium: Any = [{"type": "text", "text": "rule " * 1500, "cache_control": {"type": "ephemeral"}}]
    haiku = ask(client, medium)
    sonnet = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=5,
        system=medium,
        messages=[{"role": "user", "content": "Hi"}],
    ).usage
    assert haiku.cache_creation_input_tokens == 0
    assert sonnet.cache_creation_input_tokens == 3 + 1500


def test_later_breakpoint_reads_the_earlier_prefix(client: anthropic.Anthropic) -> None:
    first = ask(client, cached_system())
    extra = {"type": "text", "text": "extra " * 200, "cache_control": {"type": "ephemeral"}}
    history = [*cached_system(), extra]
    second = ask(client, history)
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 200


def test_message_blocks_and_tools_are_cacheable(client: anthropic.Anthropic) -> None:
    tool: Any = {
        "name": "lookup",
        "description": "doc " * 4500,
        "input_schema": {"type": "object"},
        "cache_control": {"type": "ephemeral"},
    }
    messages: Any = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Question", "cache_control": {"type": "ephemeral"}}
            ],
        }
    ]
    first = client.messages.create(
        model=HAIKU, max_tokens=5, tools=[tool], messages=messages, tool_choice={"type": "none"}
    )
    second = client.messages.create(
        model=HAIKU, max_tokens=5, tools=[tool], messages=messages, tool_choice={"type": "none"}
    )
    assert (first.usage.cache_creation_input_tokens or 0) > 4500
    assert first.usage.input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens


def test_streamed_usage_reports_the_cache(client: anthropic.Anthropic) -> None:
    ask(client, cached_system())
    with client.messages.stream(
        model=HAIKU,
        max_tokens=5,
        system=cached_system(),
        messages=[{"role": "user", "content": "Hi"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens == 3 + count_text(LONG_SYSTEM)


def test_more_than_four_breakpoints_is_rejected(client: anthropic.Anthropic) -> None:
    blocks = [
        {"type": "text", "text": f"part {n}", "cache_control": {"type": "ephemeral"}}
        for n in range(5)
    ]
    with pytest.raises(anthropic.BadRequestError) as caught:
        ask(client, blocks)
    assert "maximum of 4" in body_of(caught.value)["error"]["message"]


def test_cache_reads_do_not_count_toward_input_rate_limit(serve: Serve, clock: ManualClock) -> None:
    from tiergate.limits import RateLimits

    with serve(clock=clock, limits=RateLimits(itpm=6000)) as running:
        sdk = anthropic.Anthropic(api_key=FAKE_KEY, base_url=running.base_url, max_retries=0)
        ask(sdk, cached_system())  # writes 5,003 tokens: counted
        raw = sdk.messages.with_raw_response.create(
            model=HAIKU,
            max_tokens=5,
            system=cached_system(),
            messages=[{"role": "user", "content": "Hi"}],
        )
    remaining = int(raw.headers["anthropic-ratelimit-input-tokens-remaining"])
    assert remaining == 6000 - (3 + count_text(LONG_SYSTEM) + 5) - 5
