"""The gateway's parts on their own: config, rules, keys, upstream limits, the stream meter."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from gw_helpers import HAIKU, SONNET, config_dict

from tiergate.gateway.config import (
    AgentRoute,
    ConfigError,
    RulesRoute,
    load_config,
    parse_config,
)
from tiergate.gateway.metering import StreamMeter
from tiergate.gateway.rules import choose, strip_marks
from tiergate.limits import RateLimits
from tiergate.stores import FileKeyStore as KeyStore
from tiergate.stores import MemoryUpstreamLimits, Refused

# The fixtures (emulator, gateways, the trained route) are shared as a plugin: one instance a
# session, whichever module asks first.
pytest_plugins = ("gw_fixtures",)

EXAMPLE = Path(__file__).parents[2] / "examples" / "gateway.yaml"


def test_the_example_config_loads() -> None:
    config = load_config(EXAMPLE, {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9", "X": "y"})
    assert config.upstream.base_url == "http://127.0.0.1:9"
    assert set(config.routes) == {"tickets", "auto", "agent"}
    agent = config.routes["agent"]
    assert isinstance(agent, AgentRoute) and agent.policy == EXAMPLE.parent / "bfcl/route.yaml"
    assert config.ledger_url.startswith("sqlite:////")  # made absolute, beside the config
    auto = config.routes["auto"]
    assert isinstance(auto, RulesRoute) and auto.strong == SONNET


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"tiers": {"cheap": HAIKU}, "rules": [{"when": {"sunny": 1}, "tier": "cheap"}]}, "sunny"),
        ({"tiers": {"cheap": HAIKU}, "rules": [{"when": {"marked": "x"}, "tier": "gold"}]}, "gold"),
        ({"kind": "classify"}, r"routes\.r\.route: required field missing"),
        ({"tiers": {"cheap": HAIKU}, "default": "strong"}, "default"),
        ({"kind": "agent", "tiers": {"cheap": HAIKU}}, r"tiers\.strong: required field missing"),
        ({"kind": "agent", "tiers": {"cheap": HAIKU, "strong": SONNET}, "rules": []}, "rules"),
        (
            {"kind": "agent", "tiers": {"cheap": HAIKU, "strong": SONNET}, "strong_when": {"x": 1}},
            "strong_when",
        ),
    ],
)
def test_bad_routes_are_refused_with_the_field(route: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(config_dict("http://x", routes={"r": route}), Path("."), {})


def test_rules_pick_in_order_and_marks_never_reach_the_upstream() -> None:
    route = parse_config(config_dict("http://x"), Path("."), {}).routes["auto"]
    assert isinstance(route, RulesRoute)
    base = {"max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    assert choose(route, base, set()).tier == "cheap"
    assert choose(route, base, {"hard"}).tier == "strong"
    long = {**base, "messages": [{"role": "user", "content": "word " * 400}]}
    assert choose(route, long, set()).tier == "strong"
    marked = {**base, "metadata": {"user_id": "u", "tiergate_mark": "hard"}}
    assert strip_marks(marked)["metadata"] == {"user_id": "u"}
    assert "metadata" not in strip_marks({**base, "metadata": {"tiergate_mark": "hard"}})


def test_keys_are_stored_hashed_and_checked(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    key, secret = store.create("app", budget_usd_day=5.0, rpm=60)
    text = (tmp_path / "keys.json").read_text()
    assert secret not in text and secret.removeprefix("sk-tg-") not in text
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0
    reopened = KeyStore(tmp_path / "keys.json")
    assert reopened.authenticate(secret) == key
    assert reopened.authenticate(secret + "x") is None
    reopened.revoke("app")
    assert reopened.authenticate(secret) is None


def test_keys_create_prints_the_key_once(tmp_path: Path) -> None:
    store = tmp_path / "k.json"
    command = [sys.executable, "-m", "tiergate", "keys"]
    created = subprocess.run(
        [*command, "create", "--store", str(store), "--name", "ci", "--budget-usd-day", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    secret = created.stdout.strip()
    assert secret.startswith("sk-tg-") and secret not in created.stderr
    listed = subprocess.run(
        [*command, "list", "--store", str(store)], capture_output=True, text=True, check=True
    )
    assert "ci" in listed.stdout and "$2.00" in listed.stdout and secret not in listed.stdout
    assert KeyStore(store).authenticate(secret) is not None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limits(rpm: int, queue_s: float, clock: FakeClock) -> MemoryUpstreamLimits:
    config = parse_config(
        {**config_dict("http://x"), "limits": {"default": {"rpm": rpm}, "queue_s": queue_s}},
        Path("."),
        {},
    ).limits
    assert config.default == RateLimits(rpm=rpm)
    return MemoryUpstreamLimits(
        config.default, config.per_model, queue_s=config.queue_s, clock=clock, wall_clock=clock
    )


async def test_upstream_limits_refuse_beyond_the_queue_with_retry_after() -> None:
    clock = FakeClock()
    limiter = limits(rpm=2, queue_s=0.0, clock=clock)
    await limiter.acquire(HAIKU, 10, 10)
    await limiter.acquire(HAIKU, 10, 10)
    with pytest.raises(Refused) as caught:
        await limiter.acquire(HAIKU, 10, 10)
    assert caught.value.status == 429 and "requests" in caught.value.message
    assert dict(caught.value.headers)["retry-after"] == "30"
    await limiter.acquire(SONNET, 10, 10)  # another model has its own buckets


async def test_upstream_limits_queue_briefly_when_room_comes_soon() -> None:
    clock = FakeClock()
    limiter = limits(rpm=60, queue_s=5.0, clock=clock)
    for _ in range(60):
        await limiter.acquire(HAIKU, 1, 1)
    waiting = asyncio.ensure_future(limiter.acquire(HAIKU, 1, 1))
    await asyncio.sleep(0)
    assert not waiting.done()
    clock.now += 1.0  # one request refills per second
    grant = await asyncio.wait_for(waiting, timeout=5)
    assert grant.model == HAIKU


async def test_the_upstreams_429_pauses_the_model() -> None:
    clock = FakeClock()
    limiter = limits(rpm=1000, queue_s=0.0, clock=clock)
    limiter.observe(HAIKU, 429, {"retry-after": "7"})
    with pytest.raises(Refused) as caught:
        await limiter.acquire(HAIKU, 1, 1)
    assert dict(caught.value.headers)["retry-after"] == "7"
    clock.now += 7.5
    await limiter.acquire(HAIKU, 1, 1)


def event(name: str, data: dict[str, object]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def test_the_stream_meter_reads_usage_across_chunk_boundaries() -> None:
    stream = (
        event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "model": HAIKU,
                    "usage": {"input_tokens": 5, "cache_read_input_tokens": 4096},
                },
            },
        )
        + event(
            "content_block_delta",
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hello"}},
        )
        + event("message_delta", {"type": "message_delta", "usage": {"output_tokens": 42}})
        + event("message_stop", {"type": "message_stop"})
    )
    meter = StreamMeter()
    for start in range(0, len(stream), 7):
        meter.feed(stream[start : start + 7])
    usage = meter.usage()
    assert meter.finished and meter.model == HAIKU
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (5, 4096, 42)
