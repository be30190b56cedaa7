"""How the routing commands reach Claude: the emulator knows what it will be asked."""

import argparse
from pathlib import Path

import pytest

from tiergate.cli.claude_access import claude_access
from tiergate.datasets import Example
from tiergate.routing.route import Route, load_route
from tiergate.transports.base import MESSAGES, ApiCall

ARGS = argparse.Namespace(emulate=False, base_url=None, seed=0, latency="zero")


@pytest.fixture
def route(tmp_path: Path) -> Route:
    (tmp_path / "route.yaml").write_text(
        "name: t\nlabels: [card_arrival, refund]\ntiers: [claude-haiku-4-5]\n"
    )
    return load_route(tmp_path)


async def test_the_emulator_scenario_holds_the_examples_given(
    route: Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    asked = []

    def known() -> list[Example]:
        asked.append(True)
        return [Example("where is my new card", "card_arrival")]

    async with claude_access(ARGS, route, known) as access:
        assert access.kind == "emulated" and "EMULATED" in access.banner()
        reply = await access.transport.send(
            ApiCall(
                MESSAGES,
                {
                    "model": "claude-haiku-4-5",
                    "max_tokens": 200,
                    "messages": [
                        {"role": "user", "content": "<ticket>where is my new card</ticket>"}
                    ],
                    "output_config": {
                        "format": {
                            "type": "json_schema",
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "label": {
                                        "type": "string",
                                        "enum": ["card_arrival", "refund"],
                                    },
                                    "confidence": {"type": "number"},
                                },
                                "required": ["label", "confidence"],
                            },
                        }
                    },
                },
            )
        )
        message = reply.json()
    assert asked == [True]
    assert reply.ok and message["content"][0]["type"] == "text"


async def test_a_base_url_never_builds_a_scenario(
    route: Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")

    def known() -> list[Example]:
        raise AssertionError("the scenario is only for the emulator")

    async with claude_access(ARGS, route, known) as access:
        assert access.kind == "base_url" and access.where == "http://127.0.0.1:9"
