"""Agent routes: turns of an agent loop tiered by a calibrated tool-decision policy.

An emulator with the BFCL tool scenario is the upstream; a small ``task: tool`` route is
calibrated against it through the library (as ``tiergate calibrate`` does), and the gateway's
agent route uses that policy. The official SDK drives scripted agent loops through it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml
from gw_helpers import HAIKU, SONNET, Gateway, running_gateway

from tiergate.core.cost import price_usage
from tiergate.core.prices import load_price_book
from tiergate.core.usage import Usage
from tiergate.datasets import Example
from tiergate.emulator import EmulatorConfig, EmulatorServer
from tiergate.routing.route import load_route
from tiergate.routing.runtime import read_examples

BFCL = Path(__file__).parents[2] / "examples" / "bfcl"
CALIBRATION_ROWS = 240
TOOL_RESULT = "ok: 42"


def _rows(count: int) -> list[dict[str, Any]]:
    """Every third row of the example's calibration file: all its categories."""
    lines = (BFCL / "data" / "calibration.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[::3][:count]]


@pytest.fixture(scope="module")
def tool_route(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tools")
    rows = _rows(CALIBRATION_ROWS)
    (folder / "calibration.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    route = yaml.safe_load((BFCL / "route.yaml").read_text())
    route["data"] = {"train": "calibration.jsonl", "calibration": "calibration.jsonl"}
    route["error_budget"] = 0.1
    (folder / "route.yaml").write_text(yaml.safe_dump(route))
    return folder / "route.yaml"


@pytest.fixture(scope="module")
def tool_examples(tool_route: Path) -> list[Example]:
    route = load_route(tool_route)
    return read_examples(route, tool_route.parent / "calibration.jsonl")


@pytest.fixture(scope="module")
def tool_emulator(tool_route: Path, tool_examples: list[Example]) -> Iterator[EmulatorServer]:
    scenario = load_route(tool_route).task.scenario(tool_examples, "bfcl")
    with EmulatorServer(EmulatorConfig(seed=2, scenario=scenario)) as running:
        yield running


@pytest.fixture(scope="module")
def calibrated(tool_route: Path, tool_emulator: EmulatorServer) -> Path:
    from tiergate.routing.calibrate import calibrate_route
    from tiergate.transports import anthropic_transport

    async def calibrate() -> dict[str, Any]:
        transport = anthropic_transport(tool_emulator.base_url, "sk-test-not-real")
        try:
            return await calibrate_route(load_route(tool_route), load_price_book(), transport)
        finally:
            await transport.aclose()

    report = asyncio.run(calibrate())
    assert report["ladder"] == [HAIKU, SONNET]  # both tiers in the certified ladder
    return tool_route


def _agent_routes(policy: Path | None, **extra: Any) -> dict[str, Any]:
    route: dict[str, Any] = {"kind": "agent", "tiers": {"cheap": HAIKU, "strong": SONNET}}
    if policy is not None:
        route["policy"] = str(policy)
    route.update(extra)
    return {"agent": route}


@pytest.fixture
def agent_gateway(
    tmp_path: Path, tool_emulator: EmulatorServer, calibrated: Path
) -> Iterator[Gateway]:
    routes = _agent_routes(calibrated)
    with running_gateway(tmp_path, tool_emulator.base_url, routes=routes) as gateway:
        yield gateway


def _loop(client: anthropic.Anthropic, example: Example) -> list[Any]:
    """One agent loop: run every call (a made-up result) until the model answers in text.
    Returns each turn's raw response."""
    request = example.request
    assert request is not None
    messages: list[Any] = list(request["messages"])
    turns = []
    for _ in range(4):
        raw = client.messages.with_raw_response.create(
            model="agent", max_tokens=1024, tools=request["tools"], messages=messages
        )
        turns.append(raw)
        message = raw.parse()
        calls = [block for block in message.content if block.type == "tool_use"]
        if not calls:
            return turns
        results = [
            {"type": "tool_result", "tool_use_id": call.id, "content": TOOL_RESULT}
            for call in calls
        ]
        messages += [
            {"role": "assistant", "content": [block.model_dump() for block in message.content]},
            {"role": "user", "content": results},
        ]
    raise AssertionError("the agent loop did not end")


def test_a_scripted_agent_run_uses_both_tiers(
    agent_gateway: Gateway, tool_examples: list[Example]
) -> None:
    examples = [e for e in tool_examples if e.label["calls"]][:30]
    with agent_gateway.client() as client:
        runs = [_loop(client, example) for example in examples]
    turns = [turn for run in runs for turn in run]
    rows = agent_gateway.rows(route="agent")
    assert len(rows) == len(turns)
    book = load_price_book()
    tiers = {row["tier"] for row in rows}
    assert tiers == {"cheap", "strong"}, tiers
    for turn, row in zip(turns, rows, strict=True):
        message = turn.parse()
        assert turn.headers["x-tiergate-tier"] == row["tier"]
        assert row["model"] == message.model
        assert message.model == (HAIKU if row["tier"] == "cheap" else SONNET)
        texts = " ".join(b.text for b in message.content if b.type == "text")
        if row["tier"] == "cheap":
            # Accepted on the policy's confidence; the line tiergate asked for is not shown.
            assert row["tiers_tried"] == "cheap" and not row["escalated"]
            assert float(turn.headers["x-tiergate-confidence"]) > 0
            assert "confidence:" not in texts
        else:
            # Escalated: both calls made, both billed on the one row.
            assert row["tiers_tried"] == "cheap,strong" and row["escalated"]
            strong_alone = price_usage(Usage.from_api(message.usage.model_dump()), book.get(SONNET))
            assert row["cost_usd"] > strong_alone.total_usd * 1.1
    # Each loop ended with a text answer after its tool results.
    for run in runs:
        last = run[-1].parse()
        assert last.stop_reason == "end_turn"
        assert all(block.type == "text" for block in last.content)


def test_streaming_clients_get_the_chosen_answer_as_events(
    agent_gateway: Gateway, tool_examples: list[Example]
) -> None:
    examples = [e for e in tool_examples if e.label["calls"]][:12]
    seen = set()
    with agent_gateway.client() as client:
        for example in examples:
            request = example.request
            assert request is not None
            plain = client.messages.with_raw_response.create(
                model="agent", max_tokens=1024, tools=request["tools"], messages=request["messages"]
            )
            with client.messages.stream(
                model="agent", max_tokens=1024, tools=request["tools"], messages=request["messages"]
            ) as stream:
                kinds = [event.type for event in stream]
                streamed = stream.get_final_message()
            assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
            tier = plain.headers["x-tiergate-tier"]
            seen.add(tier)
            assert streamed.model == plain.parse().model
            assert [_call(b) for b in streamed.content] == [_call(b) for b in plain.parse().content]
            assert streamed.stop_reason == plain.parse().stop_reason
    assert seen == {"cheap", "strong"}
    rows = agent_gateway.rows(route="agent", streamed=True)
    assert len(rows) == len(examples)
    assert all(row["status"] == 200 and row["outcome"] == "ok" for row in rows)


def _call(block: Any) -> Any:
    if block.type == "tool_use":
        return (block.name, block.input)
    return (block.type, getattr(block, "text", None))


def test_without_calibration_the_route_is_the_strong_model(
    tmp_path: Path, tool_emulator: EmulatorServer, tool_route: Path, tool_examples: list[Example]
) -> None:
    uncalibrated = tmp_path / "uncalibrated"
    uncalibrated.mkdir()
    shutil.copy(tool_route, uncalibrated / "route.yaml")
    shutil.copy(tool_route.parent / "calibration.jsonl", uncalibrated / "calibration.jsonl")
    routes = _agent_routes(uncalibrated / "route.yaml")
    with running_gateway(tmp_path / "gw", tool_emulator.base_url, routes=routes) as gateway:
        with gateway.client() as client:
            for example in tool_examples[:8]:
                request = example.request
                assert request is not None
                asked = {"max_tokens": 1024, "tools": request["tools"]}
                routed = client.messages.create(
                    model="agent", messages=request["messages"], **asked
                )
                direct = client.messages.create(model=SONNET, messages=request["messages"], **asked)
                assert routed.model == SONNET
                assert [_call(b) for b in routed.content] == [_call(b) for b in direct.content]
                assert routed.usage == direct.usage
        rows = gateway.rows(route="agent")
    assert len(rows) == 8
    assert {(row["tier"], row["tiers_tried"], row["escalated"]) for row in rows} == {
        ("strong", "strong", False)
    }


def test_rules_send_first_turns_to_the_strong_tier(
    tmp_path: Path, tool_emulator: EmulatorServer, calibrated: Path, tool_examples: list[Example]
) -> None:
    routes = _agent_routes(calibrated, strong_when={"first_turn": True})
    with running_gateway(tmp_path, tool_emulator.base_url, routes=routes) as gateway:
        with gateway.client() as client:
            examples = [e for e in tool_examples if e.label["calls"]][:10]
            runs = [_loop(client, example) for example in examples]
        rows = gateway.rows(route="agent")
    assert len(rows) == sum(len(run) for run in runs)
    by_turn = iter(rows)
    for run in runs:
        first = next(by_turn)
        assert (first["tier"], first["tiers_tried"]) == ("strong", "strong")
        for _ in run[1:]:
            later = next(by_turn)
            assert later["tiers_tried"].startswith("cheap")


def test_a_policy_must_be_a_tool_route_with_a_policy_for_the_cheap_tier(
    calibrated: Path,
) -> None:
    from tiergate.core.prices import load_price_book
    from tiergate.gateway.agent import AgentTurns
    from tiergate.gateway.config import AgentRoute, ConfigError

    def agent_route(cheap: str, policy: Path) -> AgentRoute:
        tiers = {"cheap": cheap, "strong": SONNET}
        return AgentRoute.model_validate({"name": "agent", "tiers": tiers, "policy": policy})

    book = load_price_book()
    banking = Path(__file__).parents[2] / "examples" / "banking77" / "route.yaml"
    with pytest.raises(ConfigError, match="has `task: classify`, not `task: tool`"):
        AgentTurns.open(agent_route(HAIKU, banking), book)
    with pytest.raises(ConfigError, match="no policy for claude-opus-4-5"):
        AgentTurns.open(agent_route("claude-opus-4-5", calibrated), book)
    opened = AgentTurns.open(agent_route(HAIKU, calibrated), book)
    assert opened.policy is not None and opened.straight_to_strong({"tools": []}) == "no tools"


def test_a_streamed_cheap_answer_keeps_thinking_and_calls(
    agent_gateway: Gateway, tool_examples: list[Example]
) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    found = []
    with agent_gateway.client() as client:
        for example in [e for e in tool_examples if e.label["calls"]][:8]:
            request = example.request
            assert request is not None
            asked: dict[str, Any] = {
                "model": "agent",
                "max_tokens": 4096,
                "tools": request["tools"],
                "messages": request["messages"],
                "thinking": thinking,
            }
            plain = client.messages.with_raw_response.create(**asked)
            if plain.headers["x-tiergate-tier"] != "cheap":
                continue
            with client.messages.stream(**asked) as stream:
                streamed = stream.get_final_message()
            blocks = plain.parse().content
            assert blocks[0].type == "thinking"
            assert streamed.content[0] == blocks[0]  # thought and signature
            assert [_call(b) for b in streamed.content[1:]] == [_call(b) for b in blocks[1:]]
            found.append(example.id)
    assert found


def test_a_tool_route_is_served_as_an_agent_route(calibrated: Path, tmp_path: Path) -> None:
    from tiergate.gateway.config import ConfigError, load_config

    config = tmp_path / "gateway.yaml"
    config.write_text(f"routes:\n  tools: {{kind: tool, route: {calibrated}}}\n")
    with pytest.raises(ConfigError, match=r"routes\.tools\.kind: .*kind: agent"):
        load_config(config, {})
