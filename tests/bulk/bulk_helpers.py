"""Shared pieces for the bulk tests: a small trained route, a recording emulator, runs of
``tiergate batch`` as a real process that a test can kill."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from tiergate.core.prices import load_price_book
from tiergate.datasets import Example, load_dataset
from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.emulator.app import EmulatorApp
from tiergate.emulator.scenario_build import scenario_from_examples
from tiergate.routing.calibrate import calibrate_route
from tiergate.routing.route import load_route
from tiergate.routing.runtime import local_dir, route_data
from tiergate.transports import anthropic_transport

BANKING77 = Path(__file__).parents[2] / "examples" / "banking77" / "data" / "banking77_train.csv"
LABELS = (
    "card_arrival",
    "lost_or_stolen_card",
    "exchange_rate",
    "top_up_failed",
    "pin_blocked",
    "transfer_timing",
    "request_refund",
    "terminate_account",
)
TRAIN_PER_LABEL = 60
INPUT_ROWS = 300
KEY = "sk-test-not-a-real-key"
# What must not change when a run is killed and resumed (costs may: which call wrote the
# prompt cache and which read it depends on timing).
ANSWER_FIELDS = ("id", "line", "label", "tier", "confidence", "accepted", "escalated")


def banking_split() -> tuple[list[Example], list[Example]]:
    """8 labels: 60 examples each for the route (15 train, 45 held out), and 300 other texts of
    the same labels as input."""
    by_label: dict[str, list[str]] = {label: [] for label in LABELS}
    with BANKING77.open(newline="") as handle:
        for record in csv.DictReader(handle):
            texts = by_label.get(record["category"])
            if texts is not None and record["text"] not in texts:
                texts.append(record["text"])
    train = [
        Example(t, label) for label, texts in by_label.items() for t in texts[:TRAIN_PER_LABEL]
    ]
    rest = [Example(t, label) for label, texts in by_label.items() for t in texts[TRAIN_PER_LABEL:]]
    rest.sort(key=lambda example: hashlib.blake2b(example.text.encode()).digest())
    return train, rest[:INPUT_ROWS]


def write_route(directory: Path, train: list[Example]) -> Path:
    (directory / "data").mkdir(parents=True)
    with (directory / "data" / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((example.text, example.label) for example in train)
    (directory / "labels.yaml").write_text("".join(f"- {label}\n" for label in LABELS))
    (directory / "route.yaml").write_text(
        "name: bulk-test\ntask: classify\ndescription: Messages from customers of a bank.\n"
        "labels: labels.yaml\ntiers: [local, claude-haiku-4-5, claude-sonnet-4-6]\n"
        "error_budget: 0.05\nconfidence: 0.9\nwhen_unsure: flag\n"
        "data:\n  train: data/train.csv\n  calibration_share: 0.75\n"
        "few_shot: 4\nartifacts: artifacts\nseed: 0\n"
        # The static encoder loads in half a second where MiniLM takes seconds: each killed
        # run starts a new process. (Its table is distilled once per machine and cached.)
        'local:\n  encoder: "static:"\n'
    )
    return directory / "route.yaml"


async def train_and_calibrate(route_file: Path, scenario_examples: list[Example]) -> None:
    """What `tiergate train` and `tiergate calibrate` do, against an in-process emulator."""
    from tiergate.classifier import LocalModel

    route = load_route(route_file)
    data = route_data(route)
    LocalModel.train(data.train, encoder=route.encoder or "static:").save(local_dir(route))
    config = EmulatorConfig(seed=0, scenario=scenario_from_examples(scenario_examples))
    async with EmulatorServer(config) as emulator:
        transport = anthropic_transport(emulator.base_url, KEY)
        await calibrate_route(route, load_price_book(), transport)
        await transport.aclose()


def write_input(path: Path, examples: list[Example], extra: dict[int, str] | None = None) -> None:
    """Rows with ids and labels; ``extra`` puts raw lines (say, malformed ones) at line numbers."""
    lines = [
        json.dumps({"id": f"r{i}", "text": example.text, "label": example.label})
        for i, example in enumerate(examples)
    ]
    for line_number, raw in sorted((extra or {}).items()):
        lines.insert(line_number - 1, raw)
    path.write_text("\n".join(lines) + "\n")


class RecordingApp(EmulatorApp):
    """The emulator, keeping what each Messages request asked: (model, digest of messages)."""

    def __init__(self, config: EmulatorConfig) -> None:
        super().__init__(config)
        self.asked: list[tuple[str, str]] = []
        self.batches_created = 0

    async def _route(self, scope: Any, headers: dict[bytes, bytes], body: bytes) -> Any:
        if scope["method"] == "POST" and scope["path"] == "/v1/messages":
            request = orjson.loads(body)
            digest = hashlib.sha256(orjson.dumps(request["messages"])).hexdigest()
            self.asked.append((request["model"], digest))
        if scope["method"] == "POST" and scope["path"] == "/v1/messages/batches":
            self.batches_created += 1
        return await super()._route(scope, headers, body)


def recording_emulator(config: EmulatorConfig) -> tuple[EmulatorServer, RecordingApp]:
    server = EmulatorServer(config)
    app = RecordingApp(config)
    server.app = app
    return server, app


def batch_command(route: Path, source: Path, out: Path, base_url: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tiergate",
        "batch",
        str(route),
        "--in",
        str(source),
        "--out",
        str(out),
        "--base-url",
        base_url,
        "--no-progress",
        "--json",
        *extra,
    ]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ANTHROPIC_API_KEY", None)
    env["HF_HUB_OFFLINE"] = "1"
    return env


def run_to_end(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        command, env=environment(), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def kill_when(command: list[str], ready: Callable[[], bool], deadline_s: float = 90.0) -> bool:
    """Start the command and SIGKILL it as soon as ``ready()``; False if it ended first."""
    process = subprocess.Popen(
        command, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    give_up = time.monotonic() + deadline_s
    try:
        while process.poll() is None and time.monotonic() < give_up:
            if ready():
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True
            time.sleep(0.01)
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def line_count(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for raw in handle if raw.endswith(b"\n"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in path.read_text().splitlines() if raw.strip()]


def answers(path: Path) -> list[tuple[Any, ...]]:
    return [tuple(row[field] for field in ANSWER_FIELDS) for row in read_jsonl(path)]


def load_examples(path: Path) -> list[Example]:
    return load_dataset(path)
