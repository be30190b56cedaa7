"""The tool-decision scenario: how each emulated model decides which tools to call.

Built from labelled tool-decision examples (BFCL's, converted by ``tiergate.tasks.tool_bfcl``).
A request is recognised by its last user text and the names of the tools it offers. Whether a
model is right is drawn as in the classification scenario (a latent difficulty per item shared
by all models, noise per model, correlation ``rho``), with the model's accuracy shifted per
category (parallel and user-contributed requests are harder). Accuracies and shifts are
assumptions for offline runs, never measurements of Claude.

A right answer is a decision the gold accepts. A wrong one is a mistake models make: the wrong
tool, a wrong argument value, a required argument left out, one of several calls missing, no
call when one was due, or a call when none fits. Each answer starts with a text line
``confidence: P`` (what ``tiergate.tasks.tool`` asks for), drawn from Beta(right) or
Beta(wrong): informative, not perfect. When the conversation's last turn carries tool results,
the model answers in text (the end of an agent loop).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from tiergate.emulator.scenario import (
    DEFAULT_CORRELATION,
    BetaQuantiles,
    ModelBehaviour,
    behaviour_for,
    clip,
    normalize,
    uniform,
)
from tiergate.emulator.schema_values import sample
from tiergate.tasks.tool_gold import canonical_answer, decision_correct

KIND = "tool"
_NORMAL = NormalDist()

# Assumptions, not measurements (roughly the spread of published BFCL single-turn scores).
TOOL_BEHAVIOURS: dict[str, ModelBehaviour] = {
    "haiku": ModelBehaviour(0.86, (9.0, 2.0), (4.0, 3.0)),
    "sonnet": ModelBehaviour(0.93, (10.0, 2.0), (4.0, 3.0)),
    "opus": ModelBehaviour(0.94, (10.0, 2.0), (4.0, 3.0)),
    "default": ModelBehaviour(0.86, (9.0, 2.0), (4.0, 3.0)),
}
CATEGORY_SHIFT: dict[str, float] = {
    "simple_python": 0.05,
    "multiple": 0.03,
    "parallel": 0.0,
    "parallel_multiple": -0.05,
    "irrelevance": -0.03,
    "live_simple": -0.02,
    "live_parallel": -0.08,
    "live_parallel_multiple": -0.10,
    "live_relevance": -0.05,
}
MISTAKES = (
    ("wrong_value", 0.40),
    ("wrong_tool", 0.20),
    ("missing_argument", 0.15),
    ("missing_call", 0.10),
    ("no_call", 0.15),
)


@dataclass(frozen=True)
class ToolDecision:
    calls: list[dict[str, Any]]  # {"name", "arguments"}, names as the API spells them
    confidence: float
    correct: bool
    text: str = ""


@dataclass(frozen=True)
class ToolScenario:
    items: Mapping[str, Mapping[str, Any]]  # key -> gold
    behaviours: Mapping[str, ModelBehaviour] = field(default_factory=lambda: TOOL_BEHAVIOURS)
    shifts: Mapping[str, float] = field(default_factory=lambda: CATEGORY_SHIFT)
    correlation: float = DEFAULT_CORRELATION
    name: str = "tools"
    _quantiles: dict[tuple[float, float], BetaQuantiles] = field(
        default_factory=dict, repr=False, compare=False
    )

    def behaviour(self, model: str, family: str) -> ModelBehaviour:
        return behaviour_for(self.behaviours, TOOL_BEHAVIOURS, model, family)

    def decide(
        self,
        seed: int,
        model: str,
        family: str,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
    ) -> ToolDecision | None:
        """The model's decision for a known request; ``None`` for one not in the scenario."""
        key = request_key(messages, tools)
        gold = self.items.get(key)
        if gold is None:
            return None
        behaviour = self.behaviour(model, family)
        accuracy = clip(behaviour.accuracy + self.shifts.get(str(gold.get("category")), 0.0))
        difficulty = uniform(seed, "difficulty", key)
        noise = uniform(seed, f"model:{model}", key)
        rho = self.correlation
        latent = math.sqrt(rho) * _NORMAL.inv_cdf(difficulty) + math.sqrt(
            1.0 - rho
        ) * _NORMAL.inv_cdf(noise)
        right = _NORMAL.cdf(latent) < accuracy
        rng = random.Random(f"{seed}|{model}|{key}")
        if _answers_tool_results(messages):
            calls: list[dict[str, Any]] = []
            text = "Done: the tool answered."
        else:
            calls = _right_calls(gold, tools) if right else _mistake(gold, tools, rng)
            right = decision_correct(calls, gold)  # gold quirks: judge as the checker does
            text = ""
        shape = behaviour.confidence_right if right else behaviour.confidence_wrong
        quantiles = self._quantiles.setdefault(shape, BetaQuantiles(*shape))
        confidence = round(quantiles.quantile(uniform(seed, f"confidence:{model}", key)), 2)
        return ToolDecision(calls, confidence, right, text)


def request_key(messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> str:
    """What recognises a request: the first user text and the offered tool names."""
    first = next((m for m in messages if m.get("role") == "user"), None)
    content = first.get("content") if first else ""
    if isinstance(content, list):
        content = " ".join(
            str(block.get("text", ""))
            for block in content
            if isinstance(block, Mapping) and block.get("type") == "text"
        )
    names = ",".join(sorted(str(tool.get("name")) for tool in tools))
    return normalize(str(content)) + "|" + names


def _answers_tool_results(messages: Sequence[Mapping[str, Any]]) -> bool:
    turns = [m for m in messages if m.get("role") != "system"]
    content = turns[-1].get("content") if turns else ""
    return isinstance(content, list) and any(
        isinstance(block, Mapping) and block.get("type") == "tool_result" for block in content
    )


def _right_calls(gold: Mapping[str, Any], tools: Sequence[Mapping[str, Any]]) -> list[Any]:
    if gold.get("calls") is None:  # any call will do: the first tool, with valid arguments
        return [_sampled_call(tools[0], random.Random(0))] if tools else []
    return canonical_answer(gold)


def _sampled_call(tool: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
    return {"name": str(tool["name"]), "arguments": sample(tool.get("input_schema") or {}, rng)}


def _mistake(
    gold: Mapping[str, Any], tools: Sequence[Mapping[str, Any]], rng: random.Random
) -> list[dict[str, Any]]:
    expected = gold.get("calls")
    if expected is None:
        return []  # no call when one was due
    if not expected:  # a call when none fits (of the first tool offered)
        return [_sampled_call(tools[0], rng)] if tools else []
    right = canonical_answer(gold)
    kinds = [kind for kind, _ in MISTAKES]
    weights = [weight for _, weight in MISTAKES]
    for _ in range(6):
        kind = rng.choices(kinds, weights)[0]
        calls = _apply(kind, [dict(call) for call in right], gold, tools, rng)
        if calls is not None and not decision_correct(calls, gold):
            return calls
    return []


def _apply(
    kind: str,
    calls: list[dict[str, Any]],
    gold: Mapping[str, Any],
    tools: Sequence[Mapping[str, Any]],
    rng: random.Random,
) -> list[dict[str, Any]] | None:
    index = rng.randrange(len(calls))
    call = calls[index]
    arguments = dict(call["arguments"])
    if kind == "no_call":
        return []
    if kind == "missing_call":
        return calls[:index] + calls[index + 1 :] if len(calls) > 1 else None
    if kind == "wrong_tool":
        others = [tool for tool in tools if tool["name"] != call["name"]]
        if not others:
            return None
        calls[index] = _sampled_call(rng.choice(others), rng)
        return calls
    if not arguments:
        return None
    name = rng.choice(sorted(arguments))
    if kind == "missing_argument":
        del arguments[name]
    else:
        arguments[name] = _wrong_value(arguments[name], rng)
    calls[index] = {**call, "arguments": arguments}
    return calls


def _wrong_value(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice((1, -1, 10))
    if isinstance(value, float):
        return round(value * 1.5 + 1.0, 3)
    if isinstance(value, str):
        return value + rng.choice((" area", " total", " 2", " default")) if value else "unknown"
    if isinstance(value, list):
        return value[:-1] if value else ["unknown"]
    if isinstance(value, dict) and value:
        key = sorted(value)[0]
        return {**value, key: _wrong_value(value[key], rng)}
    return "unknown"


def tool_scenario_from_examples(examples: Iterable[Any], *, name: str = "tools") -> ToolScenario:
    """A scenario for tool-decision examples (``request`` with messages and tools, gold label)."""
    items: dict[str, Mapping[str, Any]] = {}
    for example in examples:
        request = example.request
        if not request or not isinstance(example.label, Mapping):
            continue
        key = request_key(request.get("messages") or [], request.get("tools") or [])
        items.setdefault(key, example.label)
    return ToolScenario(items, name=name)
