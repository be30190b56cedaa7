"""Agent loops through the gateway's agent route, on BFCL's test requests (emulated Claude).

Each test request of ``examples/bfcl`` starts an agent loop (the SDK, through ``tiergate
serve``'s app in this process, against the emulator's tool scenario): every call is answered
with a made-up result until the model answers in text. Per turn the agent route lets Haiku
answer when the calibrated policy of ``examples/bfcl`` trusts its calls, else Sonnet. Printed:
turns per tier, the first turn's decisions scored against BFCL's gold, and the cost from the
ledger against Sonnet answering every turn (the ledger's strong-only figure).

    .venv/bin/tiergate calibrate examples/bfcl      # first
    .venv/bin/python bench/agent_gateway.py [--loops 200]

The emulator's accuracies are assumptions, not Claude's.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic

from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.gateway import GatewayServer, KeyStore, parse_config
from tiergate.routing.route import load_route
from tiergate.routing.runtime import read_examples, route_data
from tiergate.tasks.tool import decision_of

ROOT = Path(__file__).resolve().parents[1]
ROUTE = ROOT / "examples" / "bfcl" / "route.yaml"
HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"


def loop(client: anthropic.Anthropic, request: dict[str, Any]) -> list[dict[str, Any]]:
    """One agent loop; each turn's response as a dict."""
    messages: list[Any] = list(request["messages"])
    turns = []
    for _ in range(4):
        message = client.messages.create(
            model="agent", max_tokens=1024, tools=request["tools"], messages=messages
        ).model_dump()
        turns.append(message)
        calls = [block for block in message["content"] if block["type"] == "tool_use"]
        if not calls:
            break
        messages += [
            {"role": "assistant", "content": message["content"]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call["id"], "content": "ok"}
                    for call in calls
                ],
            },
        ]
    return turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=200, help="test requests to start loops on")
    args = parser.parse_args()
    route = load_route(ROUTE)
    assert route.test_data is not None
    tests = read_examples(route, route.test_data)[: args.loops]
    data = route_data(route)
    scenario = route.task.scenario(data.calibration + tests, route.name)
    folder = Path(tempfile.mkdtemp(prefix="tiergate-agent-bench-"))
    _, key = KeyStore(folder / "keys.json").create("bench")
    with EmulatorServer(EmulatorConfig(seed=0, scenario=scenario)) as emulator:
        config = {
            "upstream": {"base_url": emulator.base_url, "api_key": "sk-bench-not-real"},
            "keys": "keys.json",
            "ledger": "sqlite:///ledger.db",
            "routes": {
                "agent": {
                    "kind": "agent",
                    "tiers": {"cheap": HAIKU, "strong": SONNET},
                    "policy": str(ROUTE),
                }
            },
        }
        with GatewayServer(parse_config(config, folder, {})) as server:
            client = anthropic.Anthropic(api_key=key, base_url=server.base_url, max_retries=0)
            runs = [loop(client, dict(example.request or {})) for example in tests]
            services = server.app.services
            server.call(services.ledger.flush)
            rows = [dict(row) for row in services.ledger.rows(route="agent")]
    by_tier = Counter(row["tier"] for row in rows)
    first_right: Counter[tuple[str, bool]] = Counter()
    for example, turns in zip(tests, runs, strict=True):
        model = turns[0]["model"]
        first_right[model, route.task.correct(decision_of(turns[0]), example.label)] += 1
    cost = sum(row["cost_usd"] for row in rows)
    strong_only = sum(row["strong_only_usd"] for row in rows)
    print(f"{len(tests)} agent loops, {len(rows)} turns through the agent route (emulated Claude)")
    print(f"{'tier':<8} {'turns':>6} {'share':>7}")
    for tier in ("cheap", "strong"):
        print(f"{tier:<8} {by_tier[tier]:>6} {by_tier[tier] / len(rows):>7.1%}")
    for model in (HAIKU, SONNET):
        right, wrong = first_right[model, True], first_right[model, False]
        if right + wrong:
            print(
                f"first turns answered by {model}: {right + wrong}, "
                f"{right / (right + wrong):.1%} right by BFCL's gold"
            )
    total = sum(first_right.values())
    right = sum(count for (_, ok), count in first_right.items() if ok)
    print(f"first turns right overall: {right / total:.1%}")
    print(
        f"cost ${cost:.4f} against ${strong_only:.4f} with {SONNET} on every turn "
        f"({1 - cost / strong_only:.1%} less)"
    )


if __name__ == "__main__":
    main()
