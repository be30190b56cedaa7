"""Fixtures: a real emulator on 127.0.0.1 per test, and SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import anthropic
import pytest

from tiergate.emulator import EmulatorConfig, EmulatorServer

FAKE_KEY = "sk-test-not-a-real-key"
HAIKU = "claude-haiku-4-5"

Serve = Callable[..., EmulatorServer]


@pytest.fixture
def serve() -> Serve:
    """``with serve(seed=3, ...) as emulator:`` starts an emulator with that config."""

    def start(**settings: Any) -> EmulatorServer:
        return EmulatorServer(EmulatorConfig(**settings))

    return start


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(seed=1)) as running:
        yield running


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=FAKE_KEY, base_url=emulator.base_url) as sdk:
        yield sdk


def sdk_for(emulator: EmulatorServer, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=FAKE_KEY, base_url=emulator.base_url, **options)


def text_of(message: Any) -> str:
    """The text of a message's first block (which must be a text block)."""
    block = message.content[0]
    assert block.type == "text"
    return cast(str, block.text)


def tool_input(message: Any) -> Any:
    block = message.content[0]
    assert block.type == "tool_use"
    return block.input


def body_of(error: anthropic.APIStatusError) -> dict[str, Any]:
    assert isinstance(error.body, dict)
    return error.body


def user(text: str) -> list[anthropic.types.MessageParam]:
    return [{"role": "user", "content": text}]
