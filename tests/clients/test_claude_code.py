"""The real Claude Code CLI, in print mode, through the gateway against the emulator.

One tool round trip each: the emulator's agent scenario answers Claude Code's first request
with a Bash call (``cat note.txt``), Claude Code runs it and sends the result back, and the
scenario's final answer quotes it. The note holds a fresh random word that appears nowhere in
the prompt or the scenario, so finding it in the printed answer proves the tool really ran.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cc_helpers import ClaudeCode, Recorder, install, run_print_mode

from tiergate.emulator import EmulatorConfig
from tiergate.emulator.agent_scenario import agent_scenario_from_dict
from tiergate.emulator.app import EmulatorApp
from tiergate.gateway import GatewayServer, KeyStore, parse_config
from tiergate.serving import BackgroundServer

PROMPT = "Please run the tiergate note check."
SCENARIO = {
    "kind": "agent",
    "name": "claude-code",
    "rules": [
        {
            "match": "tiergate note check",
            "steps": [
                {"tool": "Bash", "input": {"command": "cat note.txt", "description": "Read"}},
                {"text": "The note says: {result}"},
            ],
        }
    ],
}
ALLOW_CAT = ("--allowedTools", "Bash(cat:*)")


@pytest.fixture(scope="session")
def claude_code(tmp_path_factory: pytest.TempPathFactory) -> ClaudeCode:
    return install(tmp_path_factory.mktemp("npm"))


@pytest.fixture
def upstream() -> Iterator[tuple[BackgroundServer, Recorder]]:
    scenario = agent_scenario_from_dict(SCENARIO)
    recorder = Recorder(EmulatorApp(EmulatorConfig(seed=11, scenario=scenario)))
    with BackgroundServer(recorder) as server:
        yield server, recorder


@pytest.fixture
def gateway(tmp_path: Path, upstream: tuple[BackgroundServer, Recorder]) -> Iterator[Any]:
    folder = tmp_path / "gateway"
    folder.mkdir()
    store = KeyStore(folder / "keys.json")
    _, key = store.create("claude-code")
    config = {
        "upstream": {"base_url": upstream[0].base_url, "api_key": "sk-test-upstream-not-real"},
        "keys": "keys.json",
        "ledger": "sqlite:///ledger.db",
        "routes": {
            "agent": {
                "kind": "rules",
                "tiers": {"cheap": "claude-haiku-5-5", "strong": "claude-sonnet-5-5"},
                "default": "cheap",
                "rules": [{"when": {"input_tokens_over": 4000}, "tier": "strong"}],
            },
            # Models before Claude 5.5, which take no system turns without the beta.
            "legacy": {
                "kind": "rules",
                "tiers": {"cheap": "claude-haiku-4-5", "strong": "claude-sonnet-4-6"},
                "default": "strong",
                "rules": [],
            },
        },
    }
    with GatewayServer(parse_config(config, folder, {})) as server:
        yield server, key


def _rows(server: GatewayServer) -> list[dict[str, Any]]:
    services = server.app.services
    server.call(services.ledger.flush)
    return [dict(row) for row in services.ledger.rows()]


def _work_folder(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "work"
    folder.mkdir()
    word = f"tiergate-{secrets.token_hex(6)}"
    (folder / "note.txt").write_text(word + "\n")
    return folder, word


def _check_round_trip(done: Any, recorder: Recorder, word: str) -> None:
    seen = recorder.report()
    assert done.returncode == 0, f"claude exited {done.returncode}\n{done.stderr}\n{seen}"
    assert f"The note says: {word}" in done.stdout, f"stdout: {done.stdout!r}\n{seen}"
    asked = recorder.messages()
    assert len(asked) >= 2 and all(item.status == 200 for item in recorder.seen), seen
    last = asked[-1].body["messages"]
    results = [
        block
        for message in last
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert results and word in str(results[-1]["content"]), seen


def test_claude_code_answers_through_the_gateway_with_a_tool_round_trip(
    claude_code: ClaudeCode,
    gateway: tuple[GatewayServer, str],
    upstream: tuple[BackgroundServer, Recorder],
    tmp_path: Path,
) -> None:
    server, key = gateway
    folder, word = _work_folder(tmp_path)
    done = run_print_mode(
        claude_code,
        server.base_url,
        key,
        folder,
        PROMPT,
        "--model",
        "claude-sonnet-5-5",
        *ALLOW_CAT,
    )
    _check_round_trip(done, upstream[1], word)
    rows = _rows(server)
    assert rows and all(row["status"] == 200 and row["route"] == "direct" for row in rows)
    assert {row["model"] for row in rows} == {"claude-sonnet-5-5"}
    assert all(row["cost_usd"] > 0 for row in rows)


def test_claude_code_through_a_rules_route(
    claude_code: ClaudeCode,
    gateway: tuple[GatewayServer, str],
    upstream: tuple[BackgroundServer, Recorder],
    tmp_path: Path,
) -> None:
    """A route name as the model: Claude Code's tool definitions alone are long, so the
    input-length rule sends its turns to the strong tier."""
    server, key = gateway
    folder, word = _work_folder(tmp_path)
    done = run_print_mode(
        claude_code, server.base_url, key, folder, PROMPT, "--model", "agent", *ALLOW_CAT
    )
    _check_round_trip(done, upstream[1], word)
    rows = _rows(server)
    assert rows and all(row["route"] == "agent" and row["status"] == 200 for row in rows)
    assert {row["tier"] for row in rows} == {"strong"}


def test_claude_code_folds_its_system_turns_after_the_api_refuses_them(
    claude_code: ClaudeCode,
    gateway: tuple[GatewayServer, str],
    upstream: tuple[BackgroundServer, Recorder],
    tmp_path: Path,
) -> None:
    """Claude Code sends system turns to a model it does not know (a route name); on a model
    that takes none, the API's 400 wording is what Claude Code recognises to retry without
    them, so the emulator must word it the same."""
    server, key = gateway
    recorder = upstream[1]
    folder, word = _work_folder(tmp_path)
    done = run_print_mode(
        claude_code, server.base_url, key, folder, PROMPT, "--model", "legacy", *ALLOW_CAT
    )
    assert done.returncode == 0, f"{done.stderr}\n{recorder.report()}"
    assert f"The note says: {word}" in done.stdout
    refused, *answered = recorder.messages()
    assert refused.status == 400, recorder.report()
    assert "system" in [message["role"] for message in refused.body["messages"]]
    assert all(item.status == 200 for item in answered) and len(answered) >= 2
    for item in answered:
        assert "system" not in [message["role"] for message in item.body["messages"]]
    outcomes = [row["outcome"] for row in _rows(server)]
    assert outcomes[0] == "upstream_error" and set(outcomes[1:]) == {"ok"}
