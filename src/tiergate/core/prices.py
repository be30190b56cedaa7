"""The price book: prices and capabilities of models, loaded from data files.

The built-in book is ``tiergate/data/prices.yaml``. A user file (``--prices FILE`` or the
``TIERGATE_PRICES`` environment variable) is merged over it, model by model.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tiergate.errors import TiergateError
from tiergate.validation import FieldProblem, did_you_mean, parse_yaml, read_yaml, validated

PRICES_ENV = "TIERGATE_PRICES"
MILLION = 1_000_000
CLAUDE_PREFIX = "claude-"
# A word this close to a family's name (``sonet``, ``hiaku``) is a typo, not a new family.
FAMILY_TYPO_CUTOFF = 0.75
# A dated snapshot id: the model's id, then -YYYYMMDD.
_DATED = re.compile(r"^(?P<base>.+)-(?P<date>\d{8})$")


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
    # Accepts ``role: "system"`` turns inside ``messages`` without a beta header.
    mid_conversation_system: bool = False
    # Who serves it (tiergate.tiers.factory.PROVIDERS): "anthropic", or another provider's API
    # at ``base_url`` with the key in the environment variable ``api_key_env``.
    provider: str = "anthropic"
    base_url: str | None = None
    api_key_env: str | None = None


@dataclass(frozen=True)
class PriceBook:
    """Rows by model id and alias.

    ``stand_ins``: when true (:meth:`with_stand_ins`, the gateway's book), :meth:`get` also
    answers a Claude id the book does not list with its :meth:`stand_in` row, so a request for
    a new or dated model can be passed through and still metered. ``in`` stays strict either
    way: it says whether the book itself knows the name.
    """

    models: Mapping[str, ModelPrice]
    local_latency: LatencyProfile
    sources: tuple[str, ...] = ()
    stand_ins: bool = False
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
            row = self.stand_in(name) if self.stand_ins else None
            if row is None:
                raise UnknownModelError(name, self.suggest(name))
            return row
        return self.models[canonical]

    def with_stand_ins(self) -> PriceBook:
        """The same book, whose :meth:`get` prices unlisted Claude ids by :meth:`stand_in`."""
        return dataclasses.replace(self, stand_ins=True, _aliases={})

    def stand_in(self, name: str) -> ModelPrice | None:
        """The row to price an unlisted Claude model id by, named ``name``; None if the id is
        not Claude's or looks like a typo of a listed family (``claude-sonet-4-6``).

        Conservative on purpose, so a budget reserved on it holds: a dated snapshot of a listed
        model (``claude-sonnet-4-6-20260101``) costs what that model costs; a new model of a
        known family (the family's name is a word of the id, ``claude-sonnet-7``) the dearest
        row of that family; a model of a new family (``claude-fable-1``) the dearest row of
        the book.
        """
        if name in self._aliases or not name.startswith(CLAUDE_PREFIX) or not self.models:
            return None
        dated = _DATED.match(name)
        if dated is not None and dated["base"] in self._aliases:
            base = self.models[self._aliases[dated["base"]]]
            return _renamed(base, name, f"the dated snapshot of {base.name}")
        words = {word for word in name.removeprefix(CLAUDE_PREFIX).split("-") if word.isalpha()}
        families = {row.family for row in self.models.values() if row.family}
        if not words & families and any(
            difflib.get_close_matches(word, families, n=1, cutoff=FAMILY_TYPO_CUTOFF)
            for word in words
        ):
            return None
        family = [row for row in self.models.values() if row.family and row.family in words]
        rows = family or list(self.models.values())
        dearest = max(rows, key=lambda row: (row.output, row.input, row.name))
        kind = f"the dearest {dearest.family} model" if family else "the dearest model"
        return _renamed(dearest, name, f"{kind}, {dearest.name}")

    def __contains__(self, name: object) -> bool:
        return name in self._aliases

    def names(self) -> list[str]:
        return sorted(self._aliases)

    def suggest(self, name: str, count: int = 3) -> list[str]:
        return difflib.get_close_matches(name, self.names(), n=count, cutoff=0.5)


def _renamed(row: ModelPrice, name: str, why: str) -> ModelPrice:
    source = f"not in the price book: priced as {why} ({row.source})"
    return dataclasses.replace(row, name=name, aliases=(), source=source)


class _Latency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttft_s: float = Field(ge=0)
    output_tokens_per_s: float = Field(ge=0)


class _LongPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    above_prompt_tokens: int = Field(gt=0)
    input: float = Field(ge=0)
    output: float = Field(ge=0)


class _Row(BaseModel):
    """One model's row as the file gives it (after ``defaults`` and user layers are merged)."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write_5m: float = Field(ge=0)
    cache_write_1h: float = Field(ge=0)
    cache_read: float = Field(ge=0)
    batch_discount: float = Field(ge=0, le=1)
    context_window: int = Field(gt=0)
    min_cacheable_tokens: int = Field(ge=0)
    forced_tool_choice: bool
    structured_output: bool = True
    latency: _Latency
    source: str = Field(min_length=1)
    as_of: str = Field(min_length=1)
    family: str = ""
    status: str = ""
    retires: str | None = None  # a retirement date, where one is announced
    aliases: list[str] = Field(default_factory=list)
    long_prompt: _LongPrompt | None = None
    mid_conversation_system: bool = False
    provider: str = "anthropic"
    base_url: str | None = None
    api_key_env: str | None = None


class _Local(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latency: _Latency
    source: str = ""
    as_of: str = ""


class _BookFile(BaseModel):
    """A price book file's top level; rows are checked once the layers are merged."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    currency: Literal["USD"] = "USD"
    defaults: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    local: _Local | None = None

    @field_validator("defaults")
    @classmethod
    def _row_fields(cls, defaults: dict[str, Any]) -> dict[str, Any]:
        for key in defaults:
            if key not in _Row.model_fields:
                raise FieldProblem(
                    (key,), "unknown field" + did_you_mean(str(key), _Row.model_fields)
                )
        return defaults


def _row(name: str, raw: Mapping[str, Any], defaults: Mapping[str, Any], origin: str) -> ModelPrice:
    row = validated(_Row, {**defaults, **raw}, origin, PriceBookError, at=("models", name))
    long_prompt = row.long_prompt
    return ModelPrice(
        name=name,
        input=row.input,
        output=row.output,
        cache_write_5m=row.cache_write_5m,
        cache_write_1h=row.cache_write_1h,
        cache_read=row.cache_read,
        batch_discount=row.batch_discount,
        context_window=row.context_window,
        min_cacheable_tokens=row.min_cacheable_tokens,
        forced_tool_choice=row.forced_tool_choice,
        structured_output=row.structured_output,
        latency=LatencyProfile(row.latency.ttft_s, row.latency.output_tokens_per_s),
        source=row.source,
        as_of=row.as_of,
        family=row.family,
        status=row.status,
        aliases=tuple(row.aliases),
        mid_conversation_system=row.mid_conversation_system,
        provider=row.provider,
        base_url=row.base_url,
        api_key_env=row.api_key_env,
        long_prompt=(
            LongPromptPrice(long_prompt.above_prompt_tokens, long_prompt.input, long_prompt.output)
            if long_prompt
            else None
        ),
    )


def _read(path: Path | None) -> dict[str, Any]:
    if path is None:
        text = resources.files("tiergate").joinpath("data/prices.yaml").read_text("utf-8")
        raw = parse_yaml(text, "built-in price book", PriceBookError, "price book")
    else:
        raw = read_yaml(path, PriceBookError, "price book")
    source = "built-in price book" if path is None else path
    return validated(_BookFile, raw, source, PriceBookError).model_dump(exclude_unset=True)


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
    origins: dict[str, str] = {}
    local: dict[str, Any] = {}
    sources: list[str] = []
    for origin, layer in layers:
        sources.append(origin)
        defaults.update(layer.get("defaults") or {})
        for name, row in (layer.get("models") or {}).items():
            # Field by field, so a user can override one price and keep the rest of the row.
            raw_models[str(name)] = {**raw_models.get(str(name), {}), **row}
            origins[str(name)] = origin
        local.update(layer.get("local") or {})
    models = {name: _row(name, row, defaults, origins[name]) for name, row in raw_models.items()}
    latency = local.get("latency") or {"ttft_s": 0.01, "output_tokens_per_s": 0}
    return PriceBook(
        models=models,
        local_latency=LatencyProfile(
            float(latency["ttft_s"]), float(latency["output_tokens_per_s"])
        ),
        sources=tuple(sources),
    )
