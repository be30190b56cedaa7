"""The agent scenario: scripted tool calls and answers for agent loops, driven by the SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml
from conftest import HAIKU, Serve, sdk_for, text_of, user

from tiergate.emulator import load_scenario
from tiergate.emulator.agent_scenario import AgentScenario, AgentScenarioError
from tiergate.emulator.scenario import ScenarioError

SCENARIO: dict[str, Any] = {
    "kind": "agent",
    "name": "ops",
    "rules": [
        {
            "match": r"disk (usage|space)",
            "steps": [
                {"tool": "run", "input": {"command": "df -h"}},
                {"tool": "run", "input": {"command": "du -s /var"}},
                {"text": "Done. Last output: {result}"},
            ],
        },
        {"match": "restart", "steps": [{"tool": "deploy", "input": {"service": "api"}}]},
    ],
    "otherwise": {"text": "Nothing to do."},
}
TOOLS: list[Any] = [
    {"name": name, "input_schema": {"type": "object"}} for name in ("run", "search")
]


def _scenario(tmp_path: Path) -> AgentScenario:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    loaded = load_scenario(path)
    assert isinstance(loaded, AgentScenario)
    return loaded


def _loop(client: anthropic.Anthropic, prompt: str) -> tuple[list[Any], str]:
    """Run an agent loop: answer each call with a made-up result until the model says text."""
    messages: list[Any] = user(prompt)
    calls: list[Any] = []
    for _ in range(5):
        message = client.messages.create(
            model=HAIKU, max_tokens=300, tools=TOOLS, messages=messages
        )
        if message.stop_reason != "tool_use":
            return calls, text_of(message)
        call = message.content[0]
        assert call.type == "tool_use"
        calls.append((call.name, call.input))
        result = {"type": "tool_result", "tool_use_id": call.id, "content": f"out {len(calls)}"}
        messages += [
            {"role": "assistant", "content": [call.model_dump()]},
            {"role": "user", "content": [result]},
        ]
    raise AssertionError("the loop did not end")


def test_a_rule_plays_its_steps_in_order(serve: Serve, tmp_path: Path) -> None:
    with serve(scenario=_scenario(tmp_path)) as running, sdk_for(running) as client:
        calls, answer = _loop(client, "How much Disk Space is left?")
    assert calls == [("run", {"command": "df -h"}), ("run", {"command": "du -s /var"})]
    assert answer == "Done. Last output: out 2"


def test_otherwise_and_tools_not_offered(serve: Serve, tmp_path: Path) -> None:
    with serve(scenario=_scenario(tmp_path)) as running, sdk_for(running) as client:
        assert _loop(client, "Hello") == ([], "Nothing to do.")
        calls, answer = _loop(client, "Please restart it")
    assert calls == []
    assert answer.startswith("The agent scenario calls the tool 'deploy', which this request")


def test_streams_play_the_same_steps(serve: Serve, tmp_path: Path) -> None:
    with (
        serve(scenario=_scenario(tmp_path)) as running,
        sdk_for(running) as client,
        client.messages.stream(
            model=HAIKU, max_tokens=300, tools=TOOLS, messages=user("disk usage please")
        ) as stream,
    ):
        message = stream.get_final_message()
    call = message.content[0]
    assert call.type == "tool_use" and call.input == {"command": "df -h"}


def test_a_malformed_agent_scenario_names_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"kind": "agent", "rules": [{"match": "x", "steps": [{}]}]}))
    with pytest.raises(AgentScenarioError, match="rule 1, step 1"):
        load_scenario(path)
    path.write_text(yaml.safe_dump({"kind": "poetry", "items": []}))
    with pytest.raises(ScenarioError, match="kind must be"):
        load_scenario(path)
