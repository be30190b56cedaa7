"""An agent loop through ``tiergate serve``, all from the command line: a tool route calibrated by
``tiergate calibrate`` (emulated Claude), ``tiergate emulate --route`` as the upstream, and the
gateway's agent route using the calibrated policy. The ledger shows which tier took each turn."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml
from gw_helpers import HAIKU, SONNET, free_port
from gw_procs import ROOT, gateway_processes, write_config

from tiergate.gateway import KeyStore

BFCL = ROOT / "examples" / "bfcl"
ROWS = 240
LOOPS = 24


def _env() -> dict[str, str]:
    """No real API: neither a key nor a base URL reaches the commands."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANTHROPIC_")}
    return {**env, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}


def _tiergate(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tiergate", *args]
    return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def route(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bfcl")
    lines = (BFCL / "data" / "calibration.jsonl").read_text().splitlines()[::3][:ROWS]
    (folder / "calibration.jsonl").write_text("\n".join(lines) + "\n")
    settings = yaml.safe_load((BFCL / "route.yaml").read_text())
    settings["data"] = {"train": "calibration.jsonl", "calibration": "calibration.jsonl"}
    settings["error_budget"] = 0.1
    (folder / "route.yaml").write_text(yaml.safe_dump(settings))
    done = _tiergate("calibrate", str(folder / "route.yaml"), "--emulate", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ladder"] == [HAIKU, SONNET]
    return folder / "route.yaml"


@pytest.fixture(scope="module")
def upstream(route: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("emulator") / "emulator.log"
    command = [sys.executable, "-m", "tiergate", "emulate", "--route", str(route)]
    command += ["--port", str(port), "--latency", "zero"]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=_env(), stdout=output, stderr=output)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert "tool scenario" in log.read_text()
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _loop(client: anthropic.Anthropic, row: dict[str, Any]) -> int:
    """Run one agent loop to its text answer; the number of turns."""
    request = row["request"]
    messages: list[Any] = list(request["messages"])
    for turn in range(1, 5):
        message = client.messages.create(
            model="agent", max_tokens=1024, tools=request["tools"], messages=messages
        )
        calls = [block for block in message.content if block.type == "tool_use"]
        if not calls:
            return turn
        messages += [
            {"role": "assistant", "content": [block.model_dump() for block in message.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "ok"}
                    for call in calls
                ],
            },
        ]
    raise AssertionError("the agent loop did not end")


def test_an_agent_run_through_tiergate_serve_uses_both_tiers(
    route: Path, upstream: str, tmp_path: Path
) -> None:
    routes = {
        "agent": {
            "kind": "agent",
            "tiers": {"cheap": HAIKU, "strong": SONNET},
            "policy": str(route),
        }
    }
    config = write_config(tmp_path, upstream, routes=routes)
    _, key = KeyStore(tmp_path / "keys.json").create("agent-test")
    rows = [json.loads(line) for line in (route.parent / "calibration.jsonl").open()]
    rows = [row for row in rows if row["label"]["calls"]][:LOOPS]
    with gateway_processes([config], tmp_path) as (gateway,):
        client = anthropic.Anthropic(api_key=key, base_url=gateway.base_url, max_retries=0)
        turns = sum(_loop(client, row) for row in rows)
    with sqlite3.connect(tmp_path / "ledger.db") as ledger:
        found = ledger.execute(
            "SELECT tier, tiers_tried, model, status FROM requests WHERE route = 'agent'"
        ).fetchall()
    assert len(found) == turns
    assert {status for *_, status in found} == {200}
    by_tier = {tier: [row for row in found if row[0] == tier] for tier in ("cheap", "strong")}
    assert by_tier["cheap"] and by_tier["strong"]
    assert all(row[1:3] == ("cheap", HAIKU) for row in by_tier["cheap"])
    assert all(row[1:3] == ("cheap,strong", SONNET) for row in by_tier["strong"])
