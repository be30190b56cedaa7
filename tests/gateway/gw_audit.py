"""The drift scenario's pieces: a small BANKING77 route, an emulator that knows the stream, a
gateway auditing the route, a webhook receiver, and the stream sent in chunks.

The route knows 8 intents; the stream's later part comes from 4 other intents (card payments
declined, pending, charged a fee, not recognised) that the business now sends to the
``lost_or_stolen_card`` queue. The emulated top tier knows that; the local model has never seen
those texts, so its confident answers for them are wrong.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from gw_helpers import (
    Gateway,
    config_dict,
    running_gateway,
    small_route,
    train_and_calibrate,
)

from tiergate.datasets import Example, load_dataset
from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.emulator.scenario_build import scenario_from_examples

TEST_SPLIT = Path(__file__).parents[2] / "examples" / "banking77" / "data" / "banking77_test.csv"
DRIFT_INTENTS = (
    "declined_card_payment",
    "pending_card_payment",
    "card_payment_fee_charged",
    "card_payment_not_recognised",
)
DRIFT_QUEUE = "lost_or_stolen_card"
LABELS = (
    "card_arrival",
    "lost_or_stolen_card",
    "exchange_rate",
    "cash_withdrawal_charge",
    "pin_blocked",
    "Refund_not_showing_up",
    "top_up_failed",
    "change_pin",
)
PER_LABEL = 90


def audit_route(folder: Path) -> Path:
    """8 BANKING77 intents x 90 examples, a 10% budget: enough held out to certify a ladder."""
    return small_route(
        folder, labels=LABELS, per_label=PER_LABEL, error_budget=0.1, calibration_share=0.35
    )


def test_split(intents: tuple[str, ...], label_as: str | None = None) -> list[Example]:
    with TEST_SPLIT.open() as handle:
        return [
            Example(row["text"], label_as or row["category"])
            for row in csv.DictReader(handle)
            if row["category"] in intents
        ]


def interleave(examples: list[Example]) -> list[Example]:
    """Labels taken in turn, so any stretch of the stream mixes them."""
    by_label: dict[str, list[Example]] = {}
    for example in examples:
        by_label.setdefault(str(example.label), []).append(example)
    queues = list(by_label.values())
    mixed = []
    while any(queues):
        for queue in queues:
            if queue:
                mixed.append(queue.pop(0))
    return mixed


@dataclass
class Scenario:
    route: Path
    emulator: EmulatorServer
    steady: list[Example]  # the route's own intents, unseen texts
    drifted: list[Example]  # other intents, now a queue of the route


@contextmanager
def drift_scenario(folder: Path) -> Iterator[Scenario]:
    """A route trained and calibrated on 8 intents, with an emulator knowing every text."""
    path = audit_route(folder)
    train = load_dataset(path.parent / "train.csv")
    steady = interleave(test_split(LABELS))
    drifted = interleave(test_split(DRIFT_INTENTS))
    drifted = [Example(e.text, DRIFT_QUEUE) for e in drifted]
    scenario = scenario_from_examples([*train, *steady, *drifted], name="tickets")
    config = EmulatorConfig(seed=3, scenario=scenario, latency_scale=0.0)
    with EmulatorServer(config) as emulator:
        train_and_calibrate(path, emulator.base_url)
        yield Scenario(path, emulator, steady, drifted)


def route_copy(scenario: Scenario, folder: Path, *, calibrated: bool = True) -> Path:
    """The scenario's route copied (for a test that recalibrates it), maybe uncalibrated."""
    import shutil

    shutil.copytree(scenario.route.parent, folder)
    if not calibrated:
        for name in ("calibration.json", "calibration_runs.json"):
            (folder / "artifacts" / name).unlink()
    return folder / scenario.route.name


class Webhook:
    """A loopback HTTP server that keeps the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/breach"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def audit_settings(**overrides: Any) -> dict[str, Any]:
    return {
        "sample_rate": 0.25,
        "window": 60,
        "mode": "batches",
        "batch_size": 1000,
        "batch_wait_s": 3600,  # the tests drain the queue themselves, chunk by chunk
        "poll_s": 0.02,
        "reaction": "top_tier",
        "seed": 7,
        **overrides,
    }


@contextmanager
def auditing_gateway(
    folder: Path, scenario: Scenario, *, route: Path | None = None, **audit: Any
) -> Iterator[tuple[Gateway, str]]:
    """A gateway serving the route (``route``, else the scenario's) as ``tickets``, audited;
    also written as gateway.yaml (for the command line). Yields the gateway and an admin key."""
    routes = {"tickets": {"kind": "classify", "route": str(route or scenario.route)}}
    settings = {"tickets": audit_settings(**audit)}
    overrides = {"routes": routes, "audit": settings}
    raw = config_dict(scenario.emulator.base_url, **overrides)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gateway.yaml").write_text(yaml.safe_dump(raw))
    with running_gateway(
        folder, scenario.emulator.base_url, routes=routes, audit=settings
    ) as gateway:
        yield gateway, gateway.new_key("operator", admin=True)


@dataclass
class StreamResult:
    sent: int = 0
    tiers: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)  # the window's verdict after each chunk
    first_breach: int | None = None  # requests sent when the verdict first read breached


def send_stream(
    gateway: Gateway, admin: str, examples: list[Example], chunk: int = 10
) -> StreamResult:
    """Classify the texts through the gateway; after each chunk, audit what was sampled."""
    result = StreamResult()
    with gateway.client() as client, gateway.client(admin) as operator:
        for start in range(0, len(examples), chunk):
            for example in examples[start : start + chunk]:
                answer: Any = client.post(
                    "/v1/classify", body={"route": "tickets", "text": example.text}, cast_to=object
                )
                result.tiers.append(answer["tier"])
                result.sent += 1
            gateway.server.call(gateway.server.app.services.audits.drain)
            report: Any = operator.get("/v1/audit", cast_to=object)
            status = report["routes"]["tickets"]["status"]
            result.statuses.append(status)
            if status == "breached" and result.first_breach is None:
                result.first_breach = result.sent
    return result
