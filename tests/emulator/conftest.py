"""Fixtures: a real emulator on 127.0.0.1 per test, and SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import anthropic
import pytest

from tiergate.emulator import EmulatorConfig, EmulatorServer

FAKE_KEY = "sk-test-not-a-real-key"
HAIKU = "claude-haiku-4-5"

Serve = Callable[..., AbstractContextManager[EmulatorServer]]


@pytest.fixture
def serve() -> Serve:
    """``with serve(seed=3, ...) as emulator:`` starts an emulator with that config."""

    def start(**settings: object) -> AbstractContextManager[EmulatorServer]:
        return EmulatorServer(EmulatorConfig(**settings))  # type: ignore[arg-type]

    return start


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(seed=1)) as running:
        yield running


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=FAKE_KEY, base_url=emulator.base_url) as sdk:
        yield sdk


def sdk_for(emulator: EmulatorServer, **options: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=FAKE_KEY, base_url=emulator.base_url, **options)  # type: ignore[arg-type]


def user(text: str) -> list[anthropic.types.MessageParam]:
    return [{"role": "user", "content": text}]
