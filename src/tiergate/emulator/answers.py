"""What the emulated model says: content blocks, stop reason and output tokens for a request.

- ``tool_choice`` ``tool``/``any``: a call to the named (or first) tool.
- ``auto`` with tools: a tool call, unless the conversation's last turn is a ``tool_result``
  (the model then answers in text, which is how an agent loop ends); the tool whose name the
  last user turn mentions, else the first.
- ``output_config.format``: one text block with JSON valid against the schema.
- otherwise: free-text filler (:mod:`tiergate.emulator.filler`).

When a classification scenario is loaded and the last user turn holds a known ticket,
structured answers carry the scenario's label, confidence and reason in the configured fields,
and a free-text answer is that JSON object as text. An agent scenario
(:mod:`tiergate.emulator.agent_scenario`) scripts tool calls and answers instead; a task's
scenario that makes objects (:class:`~tiergate.emulator.scenario.ObjectScenario`: extraction,
in :mod:`tiergate.emulator.extract_scenario`) gives the structured answer for the items it
knows. With thinking on, a thinking block comes first (:mod:`tiergate.emulator.thinking`) and
the answer gets the ``max_tokens`` the thought left. Everything is seeded by (seed, model,
prompt), so it is reproducible; the thought has its own generator, so thinking does not change
the answer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from tiergate.emulator.agent_scenario import AgentScenario, Step, TextStep
from tiergate.emulator.filler import filler
from tiergate.emulator.ids import IdMaker
from tiergate.emulator.scenario import AnyScenario, ObjectScenario, Scenario, ScenarioAnswer
from tiergate.emulator.schema_values import sample
from tiergate.emulator.thinking import think
from tiergate.emulator.tokens import count_text
from tiergate.emulator.tool_scenario import ToolDecision, ToolScenario
from tiergate.emulator.validation import MessagesRequest

# Framing tokens of a tool call (block markers, the name), added to its JSON's count.
TOOL_USE_OUTPUT_OVERHEAD = 8


@dataclass(frozen=True, slots=True)
class Answer:
    content: list[dict[str, Any]]
    stop_reason: str
    stop_sequence: str | None
    output_tokens: int
    scenario: ScenarioAnswer | None = None
    thinking_tokens: int = 0


@dataclass(frozen=True, slots=True)
class AnswerSettings:
    seed: int
    scenario: AnyScenario | ToolScenario | None
    filler_tokens: tuple[int, int]


def answer(request: MessagesRequest, settings: AnswerSettings, ids: IdMaker) -> Answer:
    """The whole answer: a thought first when thinking is on, then what is said."""
    if request.thinking is None or not request.thinking.thinks:
        return _said(request, settings, ids)
    messages = request.body["messages"]
    thinker = random.Random(_seed(settings.seed, "thinking|" + request.model.name, messages))
    thought = think(
        request.thinking, thinker, settings.filler_tokens, request.effort, request.max_tokens
    )
    if thought.tokens >= request.max_tokens:
        return Answer([thought.block], "max_tokens", None, request.max_tokens, None, thought.tokens)
    rest = dataclasses.replace(request, max_tokens=request.max_tokens - thought.tokens)
    said = _said(rest, settings, ids)
    return dataclasses.replace(
        said,
        content=[thought.block, *said.content],
        output_tokens=said.output_tokens + thought.tokens,
        thinking_tokens=thought.tokens,
    )


def _said(request: MessagesRequest, settings: AnswerSettings, ids: IdMaker) -> Answer:
    if isinstance(settings.scenario, AgentScenario):
        step = settings.scenario.step(request.body["messages"])
        if step is not None:
            return _agent_step(step, request, ids)
    if isinstance(settings.scenario, ToolScenario) and request.tools:
        decision = settings.scenario.decide(
            settings.seed,
            request.model.name,
            request.model.family,
            request.body["messages"],
            request.tools,
        )
        if decision is not None:
            return _tool_decision(decision, request, ids)
    labels = settings.scenario if isinstance(settings.scenario, Scenario) else None
    last_user = last_user_text(request.body["messages"])
    if isinstance(settings.scenario, ObjectScenario):
        made = _scenario_object(request, settings.scenario, settings.seed, last_user, ids)
        if made is not None:
            return made
    rng = random.Random(_seed(settings.seed, request.model.name, request.body["messages"]))
    verdict = _scenario_answer(request, labels, settings.seed, last_user)
    tool = _chosen_tool(request, last_user)
    if tool is not None:
        value = _structured(tool["input_schema"], rng, verdict, labels)
        return _tool_call(tool, value, request.max_tokens, ids, verdict)
    if request.output_schema is not None:
        value = _structured(request.output_schema, rng, verdict, labels)
        return _whole_text(orjson.dumps(value).decode(), request, verdict)
    if verdict is not None and labels is not None:
        fields = labels.fields
        value = {
            fields.label: verdict.label,
            fields.confidence: verdict.confidence,
            fields.reason: verdict.reason,
        }
        return _whole_text(orjson.dumps(value).decode(), request, verdict)
    low, high = settings.filler_tokens
    text = filler(rng, rng.randint(low, high), request.max_tokens, request.stop_sequences)
    return Answer(
        [{"type": "text", "text": text.text}],
        text.stop_reason,
        text.stop_sequence,
        max(1, text.output_tokens),
    )


def last_user_text(messages: list[Mapping[str, Any]]) -> str:
    """The text of the last user turn (its text blocks joined), where tickets are looked for."""
    for message in reversed(messages):
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            return content
        return "\n".join(
            str(block.get("text", "")) for block in content if block.get("type") == "text"
        )
    return ""


def _seed(seed: int, model: str, messages: object) -> int:
    digest = hashlib.blake2b(orjson.dumps(messages), key=f"{seed}|{model}".encode()[:64])
    return int.from_bytes(digest.digest()[:8], "big")


def _agent_step(step: Step, request: MessagesRequest, ids: IdMaker) -> Answer:
    if isinstance(step, TextStep):
        return _whole_text(step.text, request, None)
    tool = next((tool for tool in request.tools if tool["name"] == step.tool), None)
    if tool is None:
        offered = ", ".join(str(tool["name"]) for tool in request.tools) or "none"
        text = (
            f"The agent scenario calls the tool {step.tool!r}, which this request does not "
            f"offer (tools: {offered})."
        )
        return _whole_text(text, request, None)
    return _tool_call(tool, dict(step.input), request.max_tokens, ids, None)


def _scenario_object(
    request: MessagesRequest, scenario: ObjectScenario, seed: int, last_user: str, ids: IdMaker
) -> Answer | None:
    """A scenario's object (extraction, ...), by tool call or as JSON text as the request asks."""
    tool = _chosen_tool(request, last_user)
    schema = tool["input_schema"] if tool is not None else request.output_schema
    if schema is None:
        return None
    value = scenario.respond(seed, request.model.name, request.model.family, last_user, schema)
    if value is None:
        return None
    if tool is not None:
        return _tool_call(tool, value, request.max_tokens, ids, None)
    return _whole_text(orjson.dumps(value).decode(), request, None)


def _tool_decision(decision: ToolDecision, request: MessagesRequest, ids: IdMaker) -> Answer:
    """A tool-scenario decision: the confidence line, then the calls (or a text answer)."""
    text = f"confidence: {decision.confidence:.2f}"
    if decision.text:
        text += "\n" + decision.text
    said = _whole_text(text, request, None)
    if not decision.calls or said.stop_reason != "end_turn":
        return said
    content = list(said.content)
    tokens = said.output_tokens
    offered = {str(tool["name"]): tool for tool in request.tools}
    for call in decision.calls:
        tool = offered.get(call["name"])
        if tool is None:
            continue
        made = _tool_call(tool, call["arguments"], request.max_tokens - tokens, ids, None)
        content += made.content
        tokens += made.output_tokens
        if made.stop_reason != "tool_use":
            return Answer(content, made.stop_reason, None, min(tokens, request.max_tokens))
    return Answer(content, "tool_use", None, tokens)


def _scenario_answer(
    request: MessagesRequest, scenario: Scenario | None, seed: int, last_user: str
) -> ScenarioAnswer | None:
    if scenario is None:
        return None
    ticket = scenario.ticket_text(last_user)
    if ticket is None:
        return None
    return scenario.answer(seed, request.model.name, request.model.family, ticket)


def _chosen_tool(request: MessagesRequest, last_user: str) -> Mapping[str, Any] | None:
    if not request.tools or request.tool_choice == "none":
        return None
    if request.tool_choice == "tool":
        return next(tool for tool in request.tools if tool["name"] == request.tool_name)
    if request.tool_choice == "auto" and _answers_tool_result(request.body["messages"]):
        return None
    mentioned = [tool for tool in request.tools if tool["name"] in last_user]
    return (mentioned or list(request.tools))[0]


def _answers_tool_result(messages: list[Mapping[str, Any]]) -> bool:
    # System turns (mid-conversation system messages) may follow the tool results.
    turns = [message for message in messages if message["role"] != "system"]
    content = turns[-1]["content"] if turns else ""
    return isinstance(content, list) and any(
        block.get("type") == "tool_result" for block in content
    )


def _structured(
    schema: Mapping[str, Any],
    rng: random.Random,
    verdict: ScenarioAnswer | None,
    scenario: Scenario | None,
) -> Any:
    value = sample(schema, rng)
    if verdict is None or scenario is None or not isinstance(value, dict):
        return value
    properties: Mapping[str, Any] = schema.get("properties") or {}
    fields = scenario.fields
    label_schema = properties.get(fields.label)
    if isinstance(label_schema, Mapping) and _allows(label_schema, verdict.label):
        value[fields.label] = verdict.label
    confidence_schema = properties.get(fields.confidence)
    if isinstance(confidence_schema, Mapping):
        value[fields.confidence] = _scaled_confidence(confidence_schema, verdict.confidence)
    if isinstance(properties.get(fields.reason), Mapping):
        value[fields.reason] = verdict.reason
    return value


def _allows(schema: Mapping[str, Any], label: str) -> bool:
    enum = schema.get("enum")
    return label in enum if enum else schema.get("type", "string") == "string"


def _scaled_confidence(schema: Mapping[str, Any], confidence: float) -> float | int:
    """The confidence in the schema's own range: 0-1 by default, e.g. 0-100 if it says so."""
    low = float(schema.get("minimum", 0.0))
    high = float(schema.get("maximum", 1.0 if low < 1.0 else low + 1.0))
    scaled = low + confidence * (high - low)
    if schema.get("type") == "integer":
        return min(int(high), max(int(low), round(scaled)))
    return round(min(high, max(low, scaled)), 4)


def _tool_call(
    tool: Mapping[str, Any],
    value: Any,
    max_tokens: int,
    ids: IdMaker,
    verdict: ScenarioAnswer | None,
) -> Answer:
    name = str(tool["name"])
    tokens = TOOL_USE_OUTPUT_OVERHEAD + count_text(name) + count_text(orjson.dumps(value).decode())
    if tokens > max_tokens:
        # Cut off mid-call: the API returns the block with whatever input it had parsed.
        block = {"type": "tool_use", "id": ids.make("toolu"), "name": name, "input": {}}
        return Answer([block], "max_tokens", None, max_tokens, verdict)
    block = {"type": "tool_use", "id": ids.make("toolu"), "name": name, "input": value}
    return Answer([block], "tool_use", None, tokens, verdict)


def _whole_text(text: str, request: MessagesRequest, verdict: ScenarioAnswer | None) -> Answer:
    tokens = max(1, count_text(text))
    if tokens > request.max_tokens:
        # Same as free text: cut at max_tokens (JSON left invalid), as the API would.
        cut = _cut_to_tokens(text, request.max_tokens)
        return Answer([{"type": "text", "text": cut}], "max_tokens", None, request.max_tokens)
    return Answer([{"type": "text", "text": text}], "end_turn", None, tokens, verdict)


def _cut_to_tokens(text: str, limit: int) -> str:
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if count_text(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]
