"""Helpers for the gateway tests: gateways in front of an emulator, a small BANKING77 route.

The fixtures built on them live in gw_fixtures (a pytest plugin).

Each test gets its own gateway (own key store, ledger and tmp folder) on 127.0.0.1, driven by
the official ``anthropic`` SDK. A small classification route (8 BANKING77 labels, 40 examples
each) is trained and calibrated once per session, against the same emulator.
"""

from __future__ import annotations

import csv
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import yaml
from anthropic.types import MessageParam

from tiergate.gateway import GatewayServer, KeyStore, parse_config

BANKING77 = Path(__file__).parents[2] / "examples" / "banking77" / "data" / "banking77_train.csv"
LABELS = (
    "card_arrival",
    "card_linking",
    "exchange_rate",
    "lost_or_stolen_card",
    "top_up_failed",
    "pin_blocked",
    "refund_not_showing_up",
    "transfer_timing",
)
PER_LABEL = 40
HAIKU = "claude-haiku-4-5"
SONNET = "claude-sonnet-4-6"
UPSTREAM_KEY = "sk-test-upstream-not-real"


@dataclass
class Gateway:
    server: GatewayServer
    key: str
    store: KeyStore
    folder: Path

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def client(self, key: str | None = None, **options: Any) -> anthropic.Anthropic:
        options.setdefault("max_retries", 0)
        return anthropic.Anthropic(api_key=key or self.key, base_url=self.base_url, **options)

    def async_client(self, key: str | None = None, **options: Any) -> anthropic.AsyncAnthropic:
        options.setdefault("max_retries", 0)
        return anthropic.AsyncAnthropic(api_key=key or self.key, base_url=self.base_url, **options)

    def new_key(self, name: str, **settings: Any) -> str:
        _, secret = self.store.create(name, **settings)
        self.reload_keys()
        return secret

    def reload_keys(self) -> None:
        """What the server does on its own within a second, now."""
        self.server.call(self.server.app.services.keys.refresh)

    def rows(self, **equal: Any) -> list[dict[str, Any]]:
        """Ledger rows so far (pending ones written first)."""
        services = self.server.app.services
        self.server.call(services.ledger.flush)
        return [dict(row) for row in services.ledger.rows(**equal)]

    def refusals(self) -> dict[tuple[str, str, int], int]:
        """Refusals counted per (day, key id, status) so far."""
        services = self.server.app.services
        self.server.call(services.ledger.flush)
        return services.ledger.refusal_counts()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_dict(upstream: str, **overrides: Any) -> dict[str, Any]:
    upstream_settings = {
        "base_url": upstream,
        "api_key": UPSTREAM_KEY,
        "forward_fault_header": True,
        "retry_base_s": 0.01,
        "max_retries": 2,
        "fallbacks": {SONNET: HAIKU},
        **overrides.pop("upstream", {}),
    }
    return {
        "upstream": upstream_settings,
        "keys": "keys.json",
        "ledger": "sqlite:///ledger.db",
        "max_body_bytes": 65536,
        "ledger_flush_s": 60,  # tests flush explicitly (or by stopping the gateway)
        "routes": {
            "auto": {
                "kind": "rules",
                "tiers": {"cheap": HAIKU, "strong": SONNET},
                "default": "cheap",
                "rules": [
                    {"when": {"input_tokens_over": 200}, "tier": "strong"},
                    {"when": {"marked": "hard"}, "tier": "strong"},
                    {"when": {"max_tokens_at_most": 16}, "tier": "cheap"},
                    {"when": {"marked": "autocomplete"}, "tier": "cheap"},
                ],
            },
        },
        **overrides,
    }


@contextmanager
def running_gateway(
    folder: Path,
    upstream: str,
    *,
    budget_usd_day: float | None = None,
    upstream_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> Iterator[Gateway]:
    folder.mkdir(parents=True, exist_ok=True)
    store = KeyStore(folder / "keys.json")
    _, secret = store.create("tests", budget_usd_day=budget_usd_day)
    settings = config_dict(upstream, **overrides)
    settings["upstream"].update(upstream_options or {})
    config = parse_config(settings, folder, {})
    with GatewayServer(config) as server:
        yield Gateway(server, secret, store, folder)


def small_route(
    folder: Path,
    *,
    labels: tuple[str, ...] = LABELS,
    per_label: int = PER_LABEL,
    error_budget: float = 0.05,
    calibration_share: float = 0.25,
) -> Path:
    """BANKING77 labels (8 x 40 examples by default), with the full three-tier ladder."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(labels, 0)
    with BANKING77.open() as source, (folder / "train.csv").open("w", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(["text", "category"])
        for row in csv.DictReader(source):
            label = row["category"]
            if label in counts and counts[label] < per_label:
                counts[label] += 1
                writer.writerow([row["text"], label])
    route = {
        "name": "tickets",
        "task": "classify",
        "description": "Messages from customers of an online bank; each label is a queue.",
        "labels": list(labels),
        "tiers": ["local", HAIKU, SONNET],
        "error_budget": error_budget,
        "confidence": 0.9,
        "data": {"train": "train.csv", "calibration_share": calibration_share},
        "few_shot": 4,
        "artifacts": "artifacts",
    }
    path = folder / "route.yaml"
    path.write_text(yaml.safe_dump(route))
    return path


def train_and_calibrate(path: Path, upstream: str) -> None:
    """Train the route's local model and calibrate it against ``upstream`` (as the CLI does)."""
    import asyncio

    from tiergate.classifier import LocalModel
    from tiergate.core.prices import load_price_book
    from tiergate.routing.calibrate import calibrate_route
    from tiergate.routing.route import load_route
    from tiergate.routing.runtime import local_dir, route_data
    from tiergate.transports import anthropic_transport

    route = load_route(path)
    LocalModel.train(route_data(route).train).save(local_dir(route))

    async def calibrate() -> None:
        transport = anthropic_transport(upstream, "sk-test-not-real")
        await calibrate_route(route, load_price_book(), transport)
        await transport.aclose()

    asyncio.run(calibrate())


def user(text: str) -> list[MessageParam]:
    return [{"role": "user", "content": text}]
