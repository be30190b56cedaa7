"""The gateway's YAML configuration, read once at start into frozen dataclasses.

Relative paths (key store, ledger file, classification routes, price book) are resolved against
the configuration file's folder, so a config and its files travel together.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tiergate.limits import RateLimits
from tiergate.tasks import TASKS

DEFAULT_UPSTREAM = "https://api.anthropic.com"


class ConfigError(ValueError):
    """A configuration that cannot be served; the message names the field."""


@dataclass(frozen=True)
class UpstreamConfig:
    base_url: str = DEFAULT_UPSTREAM
    api_key: str = ""
    timeout_s: float = 600.0
    connect_timeout_s: float = 5.0
    max_retries: int = 2
    # Retry waits are capped: a gateway holding a request for a minute helps nobody.
    max_retry_wait_s: float = 8.0
    retry_base_s: float = 0.5
    fallbacks: Mapping[str, str] = field(default_factory=dict)
    # Pass the emulator's x-tiergate-fault header through (tests and demos only).
    forward_fault_header: bool = False
    connections: int = 200
    # An attempt that sends no first byte in this time fails (and falls back); a complete
    # answer's head comes only when it is written, so it also gets max_tokens at this pace.
    first_byte_timeout_s: float = 30.0
    slowest_tokens_per_s: float = 20.0


@dataclass(frozen=True)
class LimitsConfig:
    default: RateLimits = field(default_factory=RateLimits)
    per_model: Mapping[str, RateLimits] = field(default_factory=dict)
    # How long a request may wait for its model's buckets before it is refused with 429.
    queue_s: float = 2.0


@dataclass(frozen=True)
class ServerLimits:
    """The HTTP server's own limits (see tiergate.gateway.hardening)."""

    max_header_bytes: int = 32 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    idle_timeout_s: float = 30.0
    max_connections: int = 1000


BUDGET_POLICIES = ("clamp", "refuse")


@dataclass(frozen=True)
class BudgetConfig:
    """What to do with a request whose ``max_tokens`` the budget left cannot cover.

    ``clamp`` (default): lower ``max_tokens`` to what the budget affords, down to
    ``min_tokens`` (or the request's own ``max_tokens`` if smaller); below that, refuse.
    ``refuse``: refuse it whole. Either way spend never exceeds the budget.
    """

    policy: str = "clamp"
    min_tokens: int = 64


@dataclass(frozen=True)
class Rule:
    """``when`` (one condition) sends the request to ``tier``."""

    condition: str
    value: Any
    tier: str


@dataclass(frozen=True)
class RulesRoute:
    name: str
    tiers: Mapping[str, str]  # tier name -> model id
    default: str
    rules: tuple[Rule, ...]

    @property
    def strong(self) -> str:
        return self.tiers.get("strong", self.tiers[self.default])


@dataclass(frozen=True)
class ClassifyRoute:
    """A route answered by the engine: a route file of any task kind (classify, extract, ...);
    ``kind`` in the gateway config names the task the route file must have."""

    name: str
    route_file: Path
    concurrency: int = 32
    kind: str = "classify"


RouteConfig = RulesRoute | ClassifyRoute

CONDITIONS = ("input_tokens_over", "marked", "max_tokens_at_most", "assistant_prefill")


@dataclass(frozen=True)
class GatewayConfig:
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    routes: Mapping[str, RouteConfig] = field(default_factory=dict)
    keys_path: Path = Path("tiergate-keys.json")
    ledger_url: str = "sqlite:///tiergate-ledger.db"
    max_body_bytes: int = 32 * 1024 * 1024  # the API's own limit for /v1/messages
    strong_model: str = "claude-sonnet-4-6"
    prices: Path | None = None
    ledger_flush_s: float = 0.25
    # Budgets, limits and keys: "memory" (this process; keys in the `keys:` file) or a Redis
    # URL shared by several gateways (redis://host:6379/0).
    state: str = "memory"
    # The intent journal (see tiergate.stores.journal): a folder on this host.
    journal_path: Path = Path("tiergate-journal")
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    server: ServerLimits = field(default_factory=ServerLimits)
    # /metrics answers only an admin key (keys create --admin) when true.
    metrics_admin_only: bool = False

    @property
    def shared_state(self) -> bool:
        return self.state != "memory"


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    env = os.environ if environ is None else environ
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return parse_config(raw, path.resolve().parent, env)


def parse_config(raw: Mapping[str, Any], base: Path, env: Mapping[str, str]) -> GatewayConfig:
    ledger = str(raw.get("ledger", "sqlite:///tiergate-ledger.db"))
    return GatewayConfig(
        upstream=_upstream(raw.get("upstream") or {}, env),
        limits=_limits(raw.get("limits") or {}),
        routes=_routes(raw.get("routes") or {}, base),
        keys_path=_path(base, raw.get("keys", "tiergate-keys.json")),
        ledger_url=_ledger_url(ledger, base),
        max_body_bytes=_positive_int(raw.get("max_body_bytes", 32 * 1024 * 1024), "max_body_bytes"),
        strong_model=str(raw.get("strong_model", "claude-sonnet-4-6")),
        prices=_path(base, raw["prices"]) if raw.get("prices") else None,
        ledger_flush_s=float(raw.get("ledger_flush_s", 0.25)),
        state=_state(raw.get("state", "memory")),
        journal_path=_path(base, raw.get("journal", "tiergate-journal")),
        budget=_budget(raw.get("budget") or {}),
        server=_server(raw.get("server") or {}),
        metrics_admin_only=bool(raw.get("metrics_admin_only", False)),
    )


def _server(raw: Any) -> ServerLimits:
    if not isinstance(raw, dict):
        raise ConfigError("server: expected a mapping of limits")
    known = ServerLimits.__dataclass_fields__
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"server: unknown setting {sorted(unknown)[0]!r} ({', '.join(known)})")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        where = f"server.{name}"
        values[name] = (
            _positive_float(value, where) if name.endswith("_s") else _positive_int(value, where)
        )
    return ServerLimits(**values)


def _state(value: Any) -> str:
    state = str(value)
    if state != "memory" and not state.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"state: expected memory or a redis:// URL, got {state!r}")
    return state


def _budget(raw: Any) -> BudgetConfig:
    if not isinstance(raw, dict):
        raise ConfigError("budget: expected a mapping with policy and min_tokens")
    policy = str(raw.get("policy", "clamp"))
    if policy not in BUDGET_POLICIES:
        raise ConfigError(f"budget.policy: expected clamp or refuse, got {policy!r}")
    return BudgetConfig(policy, _positive_int(raw.get("min_tokens", 64), "budget.min_tokens"))


def _upstream(raw: Mapping[str, Any], env: Mapping[str, str]) -> UpstreamConfig:
    key_env = str(raw.get("api_key_env", "ANTHROPIC_API_KEY"))
    base_url = raw.get("base_url") or env.get("ANTHROPIC_BASE_URL") or DEFAULT_UPSTREAM
    fallbacks = raw.get("fallbacks") or {}
    if not isinstance(fallbacks, dict):
        raise ConfigError("upstream.fallbacks: expected a mapping of model -> alternative model")
    return UpstreamConfig(
        base_url=str(base_url).rstrip("/"),
        api_key=str(raw.get("api_key") or env.get(key_env, "")),
        timeout_s=float(raw.get("timeout_s", 600.0)),
        connect_timeout_s=float(raw.get("connect_timeout_s", 5.0)),
        max_retries=int(raw.get("max_retries", 2)),
        max_retry_wait_s=float(raw.get("max_retry_wait_s", 8.0)),
        retry_base_s=float(raw.get("retry_base_s", 0.5)),
        fallbacks={str(model): str(alternative) for model, alternative in fallbacks.items()},
        forward_fault_header=bool(raw.get("forward_fault_header", False)),
        connections=_positive_int(raw.get("connections", 200), "upstream.connections"),
        first_byte_timeout_s=_positive_float(
            raw.get("first_byte_timeout_s", 30.0), "upstream.first_byte_timeout_s"
        ),
        slowest_tokens_per_s=_positive_float(
            raw.get("slowest_tokens_per_s", 20.0), "upstream.slowest_tokens_per_s"
        ),
    )


def _rate_limits(raw: Any, where: str) -> RateLimits:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with rpm, itpm, otpm")
    unknown = set(raw) - {"rpm", "itpm", "otpm"}
    if unknown:
        raise ConfigError(f"{where}: unknown limit {sorted(unknown)[0]!r} (rpm, itpm, otpm)")
    values = {name: raw.get(name) for name in ("rpm", "itpm", "otpm")}
    return RateLimits(
        **{
            name: None if value is None else _positive_int(value, f"{where}.{name}")
            for name, value in values.items()
        }
    )


def _limits(raw: Mapping[str, Any]) -> LimitsConfig:
    per_model = {
        str(model): _rate_limits(value, f"limits.models.{model}")
        for model, value in (raw.get("models") or {}).items()
    }
    return LimitsConfig(
        default=_rate_limits(raw.get("default") or {}, "limits.default"),
        per_model=per_model,
        queue_s=float(raw.get("queue_s", 2.0)),
    )


def _routes(raw: Mapping[str, Any], base: Path) -> dict[str, RouteConfig]:
    routes: dict[str, RouteConfig] = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise ConfigError(f"routes.{name}: expected a mapping")
        kind = body.get("kind", "rules")
        if kind in TASKS:
            if "route" not in body:
                raise ConfigError(f"routes.{name}: a {kind} route needs `route: FILE`")
            routes[name] = ClassifyRoute(
                name, _path(base, body["route"]), int(body.get("concurrency", 32)), str(kind)
            )
        elif kind == "rules":
            routes[name] = _rules_route(str(name), body)
        else:
            kinds = ", ".join(["rules", *sorted(TASKS)])
            raise ConfigError(f"routes.{name}: kind must be one of {kinds}, got {kind!r}")
    return routes


def _rules_route(name: str, body: Mapping[str, Any]) -> RulesRoute:
    tiers = body.get("tiers")
    if not isinstance(tiers, dict) or not tiers:
        raise ConfigError(f"routes.{name}.tiers: expected a mapping like {{cheap: MODEL}}")
    default = str(body.get("default", next(iter(tiers))))
    if default not in tiers:
        raise ConfigError(f"routes.{name}.default: {default!r} is not one of its tiers")
    rules = []
    for index, raw_rule in enumerate(body.get("rules") or []):
        where = f"routes.{name}.rules[{index}]"
        if not isinstance(raw_rule, dict) or set(raw_rule) != {"when", "tier"}:
            raise ConfigError(f"{where}: expected {{when: {{CONDITION: VALUE}}, tier: TIER}}")
        when = raw_rule["when"]
        if not isinstance(when, dict) or len(when) != 1:
            raise ConfigError(f"{where}.when: expected exactly one condition")
        condition, value = next(iter(when.items()))
        if condition not in CONDITIONS:
            raise ConfigError(f"{where}: unknown condition {condition!r} ({', '.join(CONDITIONS)})")
        if raw_rule["tier"] not in tiers:
            raise ConfigError(f"{where}: tier {raw_rule['tier']!r} is not one of the route's tiers")
        rules.append(Rule(str(condition), value, str(raw_rule["tier"])))
    return RulesRoute(name, {str(k): str(v) for k, v in tiers.items()}, default, tuple(rules))


def _path(base: Path, value: Any) -> Path:
    path = Path(os.path.expanduser(str(value)))
    return path if path.is_absolute() else base / path


def _ledger_url(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(base / url[len(prefix) :])
    return url


def _positive_float(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number of seconds, got {value!r}") from None
    if not number > 0:
        raise ConfigError(f"{where}: must be positive, got {number}")
    return number


def _positive_int(value: Any, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a whole number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{where}: must be positive, got {number}")
    return number
