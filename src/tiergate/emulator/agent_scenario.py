"""The agent scenario: scripted tool calls for agent-style requests (Claude Code, agent loops).

A rule holds a pattern and steps. When the pattern is found in a user turn (a turn written by
the user, not one carrying tool results), the rule plays its steps in order, one per assistant
turn after that user turn: a call of one of the request's tools with a given input, or a text
answer. ``{result}`` in a text is replaced by the text of the latest ``tool_result``, so the
answer shows that the client really ran the tool. File format (``kind: agent``)::

    kind: agent
    name: claude-code-smoke
    rules:
      - match: "run the echo check"          # a regular expression, searched in the user turn
        steps:
          - tool: Bash
            input: {command: "echo tiergate-roundtrip", description: "Print a marker"}
          - text: "The command printed: {result}"
    otherwise: {text: "Hello from the emulator."}   # optional: when no rule matches

Past its last step a rule repeats its final text; a request that offers no tool of the name a
step calls gets a text saying so. Without a matching rule (and without ``otherwise``) the
emulator answers as it does with no scenario.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tiergate.errors import TiergateError

KIND = "agent"
RESULT_FIELD = "{result}"


class AgentScenarioError(TiergateError, ValueError):
    """An agent scenario that cannot be played; the message names the rule."""


@dataclass(frozen=True, slots=True)
class ToolStep:
    tool: str
    input: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TextStep:
    text: str


Step = ToolStep | TextStep


@dataclass(frozen=True, slots=True)
class AgentRule:
    pattern: re.Pattern[str]
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class AgentScenario:
    rules: tuple[AgentRule, ...]
    otherwise: TextStep | None = None
    name: str = "agent"

    def step(self, messages: Sequence[Mapping[str, Any]]) -> Step | None:
        """What the model does next in this conversation, or None to answer as usual."""
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if message.get("role") != "user" or _carries_tool_results(message):
                continue
            text = _text_of(message.get("content"))
            rule = next((rule for rule in self.rules if rule.pattern.search(text)), None)
            if rule is None:
                continue
            done = sum(1 for later in messages[index + 1 :] if later.get("role") == "assistant")
            if done < len(rule.steps):
                return _filled(rule.steps[done], messages)
            final = rule.steps[-1]
            return _filled(final, messages) if isinstance(final, TextStep) else None
        return self.otherwise


def _filled(step: Step, messages: Sequence[Mapping[str, Any]]) -> Step:
    if isinstance(step, TextStep) and RESULT_FIELD in step.text:
        return TextStep(step.text.replace(RESULT_FIELD, latest_tool_result(messages)))
    return step


def latest_tool_result(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text of the last ``tool_result`` block of the conversation ("" if none)."""
    for message in reversed(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in reversed(content):
            if isinstance(block, Mapping) and block.get("type") == "tool_result":
                return _text_of(block.get("content")).strip()
    return ""


def _carries_tool_results(message: Mapping[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(block, Mapping) and block.get("type") == "tool_result" for block in content
    )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(
        str(block.get("text", ""))
        for block in content
        if isinstance(block, Mapping) and block.get("type") == "text"
    )


def agent_scenario_from_dict(raw: Mapping[str, Any], origin: str = "scenario") -> AgentScenario:
    rules = raw.get("rules")
    if not isinstance(rules, list) or not rules:
        raise AgentScenarioError(f"{origin}: an agent scenario needs a non-empty 'rules' list")
    otherwise = raw.get("otherwise")
    return AgentScenario(
        rules=tuple(
            _rule(rule, f"{origin}: rule {number}") for number, rule in enumerate(rules, 1)
        ),
        otherwise=None if otherwise is None else _text_step(otherwise, f"{origin}: otherwise"),
        name=str(raw.get("name", origin)),
    )


def _rule(raw: Any, where: str) -> AgentRule:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("match"), str):
        raise AgentScenarioError(f"{where}: needs 'match' (a regular expression) and 'steps'")
    try:
        pattern = re.compile(raw["match"], re.IGNORECASE)
    except re.error as error:
        raise AgentScenarioError(f"{where}: 'match' is not a regular expression: {error}") from None
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        raise AgentScenarioError(f"{where}: needs a non-empty 'steps' list")
    return AgentRule(
        pattern, tuple(_step(step, f"{where}, step {n}") for n, step in enumerate(steps, 1))
    )


def _step(raw: Any, where: str) -> Step:
    if isinstance(raw, Mapping) and "tool" in raw:
        tool, value = raw["tool"], raw.get("input", {})
        if not isinstance(tool, str) or not isinstance(value, Mapping):
            raise AgentScenarioError(f"{where}: 'tool' must be a name and 'input' an object")
        return ToolStep(tool, value)
    return _text_step(raw, where)


def _text_step(raw: Any, where: str) -> TextStep:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("text"), str):
        raise AgentScenarioError(
            f"{where}: a step is {{tool: NAME, input: {{...}}}} or {{text: TEXT}}"
        )
    return TextStep(raw["text"])
