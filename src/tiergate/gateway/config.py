"""The gateway's YAML configuration, validated once at start into frozen pydantic models.

A mistake fails the load with one line naming the file, the field and what was expected
(``gateway.yaml: upstream.timeout_s: Input should be greater than 0 (got -1)``); unknown keys
are mistakes too. Relative paths (key store, ledger file, routes, price book) are resolved
against the configuration file's folder, so a config and its files travel together. The kinds
of route live in ``route_config.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tiergate.audit.config import RouteAudit, named, unknown_routes
from tiergate.core.prices import PriceBook, PriceBookError, load_price_book
from tiergate.gateway.config_fields import ConfigError, ConfigPath, Section, context_of
from tiergate.gateway.route_config import (
    KINDS,
    AgentRoute,
    ClassifyRoute,
    LearnedRoute,
    RouteConfig,
    Rule,
    RulesRoute,
    route_kind,
    route_model,
)
from tiergate.limits import RateLimits
from tiergate.validation import did_you_mean, read_yaml, validated

DEFAULT_UPSTREAM = "https://api.anthropic.com"

__all__ = [
    "AgentRoute",
    "BudgetConfig",
    "ClassifyRoute",
    "ConfigError",
    "GatewayConfig",
    "LearnedRoute",
    "LimitsConfig",
    "RouteConfig",
    "Rule",
    "RulesRoute",
    "ServerLimits",
    "UpstreamConfig",
    "check_models",
    "load_config",
    "parse_config",
]


class UpstreamConfig(Section):
    # Default: $ANTHROPIC_BASE_URL, else the real API.
    base_url: str = ""
    # The organisation's key: given here, else read from the variable ``api_key_env`` names.
    api_key: str = Field(default="", repr=False)
    api_key_env: str = "ANTHROPIC_API_KEY"
    timeout_s: PositiveFloat = 600.0
    connect_timeout_s: PositiveFloat = 5.0
    max_retries: NonNegativeInt = 2
    # Retry waits are capped: a gateway holding a request for a minute helps nobody.
    max_retry_wait_s: NonNegativeFloat = 8.0
    retry_base_s: NonNegativeFloat = 0.5
    fallbacks: dict[str, str] = Field(default_factory=dict)
    # Pass the emulator's x-tiergate-fault header through (tests and demos only).
    forward_fault_header: bool = False
    connections: PositiveInt = 200
    # An attempt that sends no first byte in this time fails (and falls back); a complete
    # answer's head comes only when it is written, so it also gets max_tokens at this pace.
    first_byte_timeout_s: PositiveFloat = 30.0
    slowest_tokens_per_s: PositiveFloat = 20.0

    @model_validator(mode="before")
    @classmethod
    def _from_the_environment(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        env = context_of(info).get("env") or {}
        filled = dict(data)
        if not filled.get("base_url"):
            filled["base_url"] = env.get("ANTHROPIC_BASE_URL") or DEFAULT_UPSTREAM
        key_env = filled.get("api_key_env", "ANTHROPIC_API_KEY")
        if not filled.get("api_key") and isinstance(key_env, str):
            filled["api_key"] = env.get(key_env, "")
        return filled

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
        return url.rstrip("/")


class LimitValues(Section):
    """Per-minute limits for one model; a limit left out is unlimited."""

    rpm: PositiveInt | None = None
    itpm: PositiveInt | None = None
    otpm: PositiveInt | None = None

    @property
    def rate_limits(self) -> RateLimits:
        return RateLimits(self.rpm, self.itpm, self.otpm)


class LimitsConfig(Section):
    default_values: LimitValues = Field(default_factory=LimitValues, alias="default")
    models: dict[str, LimitValues] = Field(default_factory=dict)
    # How long a request may wait for its model's buckets before it is refused with 429.
    queue_s: NonNegativeFloat = 2.0

    @property
    def default(self) -> RateLimits:
        return self.default_values.rate_limits

    @property
    def per_model(self) -> dict[str, RateLimits]:
        return {model: values.rate_limits for model, values in self.models.items()}


BUDGET_POLICIES = ("clamp", "refuse")


class BudgetConfig(Section):
    """What to do with a request whose ``max_tokens`` the budget left cannot cover.

    ``clamp`` (default): lower ``max_tokens`` to what the budget affords, down to
    ``min_tokens`` (or the request's own ``max_tokens`` if smaller); below that, refuse.
    ``refuse``: refuse it whole. Either way spend never exceeds the budget.
    """

    policy: Literal["clamp", "refuse"] = "clamp"
    min_tokens: PositiveInt = 64


class ServerLimits(Section):
    """The HTTP server's own limits (see tiergate.gateway.hardening)."""

    max_header_bytes: PositiveInt = 32 * 1024
    header_timeout_s: PositiveFloat = 10.0
    body_timeout_s: PositiveFloat = 60.0
    idle_timeout_s: PositiveFloat = 30.0
    max_connections: PositiveInt = 1000


SECTIONS = ("upstream", "limits", "budget", "routes", "server", "audit")


class GatewayConfig(Section):
    upstream: UpstreamConfig
    limits: LimitsConfig = Field(default_factory=lambda: LimitsConfig())
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    # Defaults are validated too: default files sit beside the config like given ones.
    keys_path: ConfigPath = Field(
        default=Path("tiergate-keys.json"), alias="keys", validate_default=True
    )
    ledger_url: str = Field(
        default="sqlite:///tiergate-ledger.db", alias="ledger", validate_default=True
    )
    max_body_bytes: PositiveInt = 32 * 1024 * 1024  # the API's own limit for /v1/messages
    strong_model: str = "claude-sonnet-4-6"
    prices: ConfigPath | None = None
    ledger_flush_s: PositiveFloat = 0.25
    # Budgets, limits and keys: "memory" (this process; keys in the `keys:` file) or a Redis
    # URL shared by several gateways (redis://host:6379/0).
    state: str = "memory"
    # The intent journal (see tiergate.stores.journal): a folder on this host.
    journal_path: ConfigPath = Field(
        default=Path("tiergate-journal"), alias="journal", validate_default=True
    )
    budget: BudgetConfig = Field(default_factory=lambda: BudgetConfig())
    # The audit loop per engine route (tiergate.audit.config).
    audit: dict[str, RouteAudit | None] = Field(default_factory=dict)
    server: ServerLimits = Field(default_factory=lambda: ServerLimits())
    # /metrics answers only an admin key (keys create --admin) when true.
    metrics_admin_only: bool = False

    @property
    def shared_state(self) -> bool:
        return self.state != "memory"

    @property
    def audits(self) -> dict[str, RouteAudit]:
        """The ``audit:`` section, each entry carrying its route's name."""
        return named(self.audit)

    @model_validator(mode="after")
    def _audited_routes_are_engine_routes(self) -> GatewayConfig:
        engine = [name for name, route in self.routes.items() if isinstance(route, ClassifyRoute)]
        problem = unknown_routes(self.audit, engine)
        if problem is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """``limits:`` with nothing under it means the defaults. ``upstream`` is validated even
        when absent, so ANTHROPIC_BASE_URL and the key's variable are read."""
        if not isinstance(data, dict):
            return data
        filled = {k: v for k, v in data.items() if not (k in SECTIONS and v is None)}
        filled.setdefault("upstream", {})
        return filled

    @field_validator("state")
    @classmethod
    def _state(cls, state: str) -> str:
        if state != "memory" and not state.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"expected memory or a redis:// URL, got {state!r}")
        return state

    @field_validator("ledger_url")
    @classmethod
    def _ledger_beside_the_config(cls, url: str, info: ValidationInfo) -> str:
        prefix = "sqlite:///"
        base = context_of(info).get("base")
        if "://" not in url:
            raise ValueError(f"expected a database URL such as sqlite:///ledger.db, got {url!r}")
        if (
            base is not None
            and url.startswith(prefix)
            and not url.startswith(prefix + "/")
            and ":memory:" not in url
        ):
            return prefix + str(Path(base) / url[len(prefix) :])
        return url


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    path = Path(path)
    raw = read_yaml(path, ConfigError, "gateway config")
    return parse_config(
        raw, path.resolve().parent, os.environ if environ is None else environ, path
    )


def parse_config(
    raw: Mapping[str, Any],
    base: Path,
    env: Mapping[str, str],
    source: str | Path = "gateway config",
) -> GatewayConfig:
    """The config from a mapping (a parsed file); ``source`` names it in errors."""
    context = {"base": base, "env": env}
    routes = _routes(raw.get("routes"), source, context)
    config = validated(
        GatewayConfig, {**raw, "routes": routes}, source, ConfigError, context=context
    )
    check_models(config, _book(config, source), source)
    return config


def _routes(raw: Any, source: str | Path, context: Mapping[str, Any]) -> dict[str, RouteConfig]:
    """Each route by its kind's model (``route_config.py``), named by its key."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: routes: expected a mapping of route name -> route")
    routes: dict[str, RouteConfig] = {}
    for name, body in raw.items():
        where = f"{source}: routes.{name}"
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: expected a mapping with a kind ({', '.join(KINDS)})")
        kind = route_kind(body)
        model = route_model(kind)
        if model is None:
            hint = did_you_mean(str(kind), KINDS)
            raise ConfigError(
                f"{where}.kind: expected one of {', '.join(KINDS)}, got {kind!r}{hint}"
            )
        if "name" in body:
            raise ConfigError(f"{where}.name: unknown field (a route is named by its key)")
        route = validated(
            model, body, source, ConfigError, at=("routes", str(name)), context=context
        )
        routes[str(name)] = route.model_copy(update={"name": str(name)})
    return routes


def _book(config: GatewayConfig, source: str | Path) -> PriceBook:
    try:
        return load_price_book(config.prices)
    except PriceBookError as error:
        raise ConfigError(f"{source}: prices: {error}") from None


def check_models(config: GatewayConfig, book: PriceBook, source: str | Path) -> None:
    """Every model the config names is in the price book, and no route is named like one."""
    named: list[tuple[str, str]] = [("strong_model", config.strong_model)]
    for model, alternative in config.upstream.fallbacks.items():
        named += [
            (f"upstream.fallbacks.{model}", model),
            (f"upstream.fallbacks.{model}", alternative),
        ]
    named += [(f"limits.models.{model}", model) for model in config.limits.models]
    for name, route in config.routes.items():
        if isinstance(route, RulesRoute):
            named += [(f"routes.{name}.tiers.{tier}", m) for tier, m in route.tiers.items()]
        elif isinstance(route, LearnedRoute | AgentRoute):
            named += [
                (f"routes.{name}.tiers.cheap", route.tiers.cheap),
                (f"routes.{name}.tiers.strong", route.tiers.strong),
            ]
    for where, model in named:
        if model not in book:
            hint = " or ".join(book.suggest(model))
            raise ConfigError(
                f"{source}: {where}: {model!r} is not in the price book"
                + (f"; did you mean {hint}?" if hint else " (add its row with `prices: FILE`)")
            )
    for name in config.routes:
        if name in book:
            raise ConfigError(f"{source}: routes.{name}: a route name must not be a model id")
