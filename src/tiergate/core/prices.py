"""The price book: prices and capabilities of models, loaded from data files.

The built-in book is ``tiergate/data/prices.yaml``. A user file (``--prices FILE`` or the
``TIERGATE_PRICES`` environment variable) is merged over it, model by model.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tiergate.errors import TiergateError

PRICES_ENV = "TIERGATE_PRICES"
MILLION = 1_000_000


class PriceBookError(TiergateError, ValueError):
    """The price book file is unreadable or a row is malformed."""


class UnknownModelError(TiergateError, KeyError):
    """A model name that the price book does not know."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.suggestions = suggestions

    def __str__(self) -> str:
        hint = f"; did you mean {' or '.join(self.suggestions)}?" if self.suggestions else ""
        return f"unknown model {self.name!r}{hint}"


@dataclass(frozen=True, slots=True)
class LongPromptPrice:
    above_prompt_tokens: int
    input: float
    output: float


@dataclass(frozen=True, slots=True)
class LatencyProfile:
    ttft_s: float
    output_tokens_per_s: float

    def seconds(self, output_tokens: float) -> float:
        """Typical wall time of a whole (non-streamed) answer of ``output_tokens``."""
        if self.output_tokens_per_s <= 0:
            return self.ttft_s
        return self.ttft_s + output_tokens / self.output_tokens_per_s


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One row of the price book. Prices are USD per million tokens; the rest are multipliers."""

    name: str
    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    batch_discount: float
    context_window: int
    min_cacheable_tokens: int
    forced_tool_choice: bool
    structured_output: bool
    latency: LatencyProfile
    source: str
    as_of: str
    family: str = ""
    status: str = ""
    aliases: tuple[str, ...] = ()
    long_prompt: LongPromptPrice | None = None


@dataclass(frozen=True)
class PriceBook:
    models: Mapping[str, ModelPrice]
    local_latency: LatencyProfile
    sources: tuple[str, ...] = ()
    _aliases: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for model in self.models.values():
            self._aliases[model.name] = model.name
            for alias in model.aliases:
                self._aliases[alias] = model.name

    def get(self, name: str) -> ModelPrice:
        """The row for a model id or alias; raises UnknownModelError with close matches."""
        canonical = self._aliases.get(name)
        if canonical is None:
            raise UnknownModelError(name, self.suggest(name))
        return self.models[canonical]

    def __contains__(self, name: object) -> bool:
        return name in self._aliases

    def names(self) -> list[str]:
        return sorted(self._aliases)

    def suggest(self, name: str, count: int = 3) -> list[str]:
        return difflib.get_close_matches(name, self.names(), n=count, cutoff=0.5)


def _row(name: str, raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> ModelPrice:
    merged = {**defaults, **raw}
    try:
        latency = merged["latency"]
        long_prompt = merged.get("long_prompt")
        return ModelPrice(
            name=name,
            input=float(merged["input"]),
            output=float(merged["output"]),
            cache_write_5m=float(merged["cache_write_5m"]),
            cache_write_1h=float(merged["cache_write_1h"]),
            cache_read=float(merged["cache_read"]),
            batch_discount=float(merged["batch_discount"]),
            context_window=int(merged["context_window"]),
            min_cacheable_tokens=int(merged["min_cacheable_tokens"]),
            forced_tool_choice=bool(merged["forced_tool_choice"]),
            structured_output=bool(merged.get("structured_output", True)),
            latency=LatencyProfile(float(latency["ttft_s"]), float(latency["output_tokens_per_s"])),
            source=str(merged["source"]),
            as_of=str(merged["as_of"]),
            family=str(merged.get("family", "")),
            status=str(merged.get("status", "")),
            aliases=tuple(str(alias) for alias in merged.get("aliases", ())),
            long_prompt=(
                LongPromptPrice(
                    int(long_prompt["above_prompt_tokens"]),
                    float(long_prompt["input"]),
                    float(long_prompt["output"]),
                )
                if long_prompt
                else None
            ),
        )
    except KeyError as missing:
        raise PriceBookError(f"model {name!r}: missing field {missing.args[0]!r}") from None
    except (TypeError, ValueError) as bad:
        raise PriceBookError(f"model {name!r}: {bad}") from None


def _read(path: Path | None) -> dict[str, Any]:
    try:
        if path is None:
            text = resources.files("tiergate").joinpath("data/prices.yaml").read_text("utf-8")
        else:
            text = path.read_text("utf-8")
        loaded = yaml.safe_load(text)
    except OSError as error:
        raise PriceBookError(f"cannot read price book {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise PriceBookError(f"price book {path} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("models", {}), dict):
        raise PriceBookError(f"price book {path} must be a mapping with a 'models' mapping")
    return loaded


def load_price_book(override: str | Path | None = None, *, use_env: bool = True) -> PriceBook:
    """The built-in price book, with the user's file (argument, else $TIERGATE_PRICES) over it.

    A user row for a known model is merged field by field over the built-in row; a new model
    needs a whole row (fields left out come from ``defaults``).
    """
    layers: list[tuple[str, dict[str, Any]]] = [("built-in", _read(None))]
    chosen = override if override is not None else (os.environ.get(PRICES_ENV) if use_env else None)
    if chosen:
        layers.append((str(chosen), _read(Path(chosen))))
    return _merge(layers)


def _merge(layers: Iterable[tuple[str, dict[str, Any]]]) -> PriceBook:
    defaults: dict[str, Any] = {}
    raw_models: dict[str, dict[str, Any]] = {}
    local: dict[str, Any] = {}
    sources: list[str] = []
    for origin, layer in layers:
        sources.append(origin)
        defaults.update(layer.get("defaults") or {})
        for name, row in (layer.get("models") or {}).items():
            if not isinstance(row, dict):
                raise PriceBookError(f"{origin}: model {name!r} must be a mapping")
            # Field by field, so a user can override one price and keep the rest of the row.
            raw_models[str(name)] = {**raw_models.get(str(name), {}), **row}
        local.update(layer.get("local") or {})
    models = {name: _row(name, row, defaults) for name, row in raw_models.items()}
    latency = local.get("latency", {"ttft_s": 0.01, "output_tokens_per_s": 0})
    return PriceBook(
        models=models,
        local_latency=LatencyProfile(
            float(latency["ttft_s"]), float(latency["output_tokens_per_s"])
        ),
        sources=tuple(sources),
    )
