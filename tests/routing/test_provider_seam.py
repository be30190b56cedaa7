"""A tier of another provider joins a ladder through the price book alone.

A local LLM behind an OpenAI-compatible chat completions API (here a small server on 127.0.0.1
that answers like one) becomes the first rung below Claude by one price book row naming its
``provider``: the factory builds it, calibration measures it, the engine walks it. No engine,
fitting or route code knows it exists.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tiergate.core.prices import load_price_book
from tiergate.datasets import Example
from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.emulator.scenario_build import scenario_from_examples
from tiergate.routing.calibrate import calibrate_route
from tiergate.routing.route import load_route
from tiergate.routing.runtime import open_router
from tiergate.tiers.openai_compatible import OpenAICompatibleTier
from tiergate.transports import anthropic_transport

LABELS = ("card_arrival", "lost_card", "refund")
TEXTS = {
    "card_arrival": "my new card has still not arrived, order number {}",
    "lost_card": "I lost my card on the bus, case {}",
    "refund": "please refund the purchase number {}",
}


def examples(count: int) -> list[Example]:
    return [Example(TEXTS[label].format(i), label) for i in range(count) for label in LABELS]


class ChatCompletions:
    """Answers like an OpenAI-compatible server: right 90% of the time, with a confidence that
    says so; and keeps what it was sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.truth = {e.text: e.label for e in examples(200)}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        assert request.headers["authorization"] == "Bearer sk-test-local-llm"
        user = body["messages"][-1]["content"]
        text = user.split("<ticket>")[1].split("</ticket>")[0]
        right = self.truth[text]
        rng = random.Random(text)
        correct = rng.random() < 0.9
        label = right if correct else next(x for x in LABELS if x != right)
        answer = {
            "label": label,
            "confidence": 0.8 + 0.19 * rng.random() if correct else 0.3 * rng.random(),
            "reason": "as the server saw it",
        }
        return web.json_response(
            {
                "model": body["model"],
                "choices": [
                    {
                        "message": {"role": "assistant", "content": json.dumps(answer)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 200, "completion_tokens": 20},
            }
        )


@pytest.fixture
async def local_llm() -> AsyncIterator[tuple[str, ChatCompletions]]:
    server = ChatCompletions()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v1", server
    await runner.cleanup()


async def test_a_provider_is_a_price_book_row(
    tmp_path: Path, local_llm: tuple[str, ChatCompletions], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, server = local_llm
    monkeypatch.setenv("LOCAL_LLM_KEY", "sk-test-local-llm")
    (tmp_path / "prices.yaml").write_text(
        "models:\n"
        "  local-llm:\n"
        "    provider: openai\n"
        f"    base_url: {base_url}\n"
        "    api_key_env: LOCAL_LLM_KEY\n"
        "    input: 0.01\n    output: 0.02\n"
        "    context_window: 32000\n    min_cacheable_tokens: 0\n"
        "    forced_tool_choice: false\n"
        "    latency: {ttft_s: 0.05, output_tokens_per_s: 100}\n"
        "    source: a server of our own\n    as_of: '2026-12-02'\n"
    )
    book = load_price_book(tmp_path / "prices.yaml", use_env=False)
    data = examples(200)
    with (tmp_path / "train.csv").open("w") as handle:
        handle.write("text,label\n" + "".join(f'"{e.text}",{e.label}\n' for e in data))
    (tmp_path / "route.yaml").write_text(
        f"name: seam\nlabels: {list(LABELS)}\ntiers: [local-llm, claude-sonnet-4-6]\n"
        "error_budget: 0.05\nfew_shot: 0\ndata: {train: train.csv, calibration_share: 0.5}\n"
    )
    route = load_route(tmp_path)
    scenario = scenario_from_examples(data, name="seam")
    async with EmulatorServer(EmulatorConfig(seed=1, scenario=scenario)) as emulator:
        transport = anthropic_transport(emulator.base_url, "sk-test-not-real")
        report = await calibrate_route(route, book, transport)
        router = open_router(route, book, transport)
        assert isinstance(router.tiers["local-llm"], OpenAICompatibleTier)
        decision = await router.decide(TEXTS["refund"].format(7))
        await router.aclose()
        await transport.aclose()
    rows = {row["tier"]: row for row in report["tiers"]}
    # Calibration asked the server every held-out ticket and measured it like any tier.
    assert rows["local-llm"]["mean_cost_per_call_usd"] == pytest.approx(
        (200 * 0.01 + 20 * 0.02) / 1_000_000
    )
    assert rows["local-llm"]["usable_share"] == 1.0
    assert len(server.requests) >= 300
    # Its requests are chat completions with the task's schema as the response format.
    sent = server.requests[-1]
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] == list(
        LABELS
    )
    assert decision.trace[0].tier == "local-llm"
    assert decision.payload in LABELS
