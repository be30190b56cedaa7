"""Tiers from the price book: each model row names its ``provider``, and a provider is a module.

A provider class has ``create(model, task, transport)``; ``transport`` is the Anthropic
transport the caller set up (the gateway's, with its limits and fallbacks, or the command
line's); a provider that talks to another API builds its own from the row (``base_url``,
``api_key_env``). Adding a provider is one module and one line in ``PROVIDERS``; the engine
never changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Protocol

from tiergate.core.prices import ModelPrice, PriceBook
from tiergate.errors import TiergateError
from tiergate.tasks.base import Task
from tiergate.tiers.base import Tier
from tiergate.transports.base import Transport

# provider -> "module:class"
PROVIDERS: dict[str, str] = {
    "anthropic": "tiergate.tiers.anthropic:AnthropicTier",
    "openai": "tiergate.tiers.openai_compatible:OpenAICompatibleTier",
}


class ProviderError(TiergateError, ValueError):
    """A price book row names a provider tiergate does not know."""


class Provider(Protocol):
    @classmethod
    def create(cls, model: ModelPrice, task: Task, transport: Transport) -> Tier: ...


def provider_class(name: str) -> type[Provider]:
    if name not in PROVIDERS:
        raise ProviderError(
            f"provider {name!r} is not one tiergate knows ({', '.join(sorted(PROVIDERS))})"
        )
    module, attribute = PROVIDERS[name].split(":")
    found: type[Provider] = getattr(importlib.import_module(module), attribute)
    return found


def build_tier(model: ModelPrice, task: Task, transport: Transport) -> Tier:
    return provider_class(model.provider).create(model, task, transport)


def build_tiers(
    names: tuple[str, ...], book: PriceBook, task: Task, transport: Transport
) -> Mapping[str, Tier]:
    """A tier per paid model of a ladder, built by its provider."""
    return {name: build_tier(book.get(name), task, transport) for name in names}
