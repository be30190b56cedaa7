"""Tool-call decisions: given a conversation and the tools offered, which calls to make.

The item's ``request`` is what a client (an agent loop) sends: ``messages``, ``tools`` and maybe
``system``. A tier answers that request as is, with one instruction added to the system prompt:
a first line ``confidence: P``, the model's probability that its decision is right. The payload
is the decision, a list of calls ``{"name", "arguments"}`` (empty: no call). It is right when it
matches the gold by BFCL's rules (:mod:`tiergate.tasks.tool_gold`). Features: the stated
confidence, the calls' validity against the tools' input schemas, a lexical similarity of the
request to the tools called and to those not called (:mod:`tiergate.tasks.tool_features`), and
for a tier above another whether the two decisions agree (so the ladder is fitted whole).
One threshold for all decisions. The gateway's agent routes (``gateway/agent.py``) judge a
turn with these same features.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from tiergate.errors import TiergateError
from tiergate.tasks.base import Context, Item, Payload, Reading, Task
from tiergate.tasks.tool_features import similarity_features, validity_features
from tiergate.tasks.tool_gold import api_name, decision_correct
from tiergate.validation import validated

if TYPE_CHECKING:
    from tiergate.core.prices import ModelPrice
    from tiergate.datasets import Example

CONFIDENCE_INSTRUCTION = (
    "Decide which of the offered tools to call for the user's latest request, with which "
    "arguments: one call, several calls, or no call when no tool fits. Start your answer with "
    "one line `confidence: P`, where P is your probability between 0 and 1 that this decision "
    "(which tools, which arguments, or no call) is exactly right. Be honest: a request that "
    "fits no tool well, or leaves an argument unclear, deserves a low confidence."
)
_CONFIDENCE = re.compile(r"confidence:\s*([01](?:\.\d+)?|\.\d+)", re.IGNORECASE)
_CONFIDENCE_LINE = re.compile(r"^\s*confidence:\s*[0-9.]+\s*\n?", re.IGNORECASE | re.MULTILINE)


class ToolRequestError(TiergateError, ValueError):
    """An item without the request a tool decision is made on."""


class ToolSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(default=1024, ge=16)


class ToolTask(Task):
    kind: ClassVar[str] = "tool"
    uses_earlier_answers: ClassVar[bool] = True

    def __init__(self, *, max_tokens: int = 1024) -> None:
        self.max_tokens = max_tokens

    @classmethod
    def from_route(
        cls, raw: Mapping[str, Any], path: Path, *, description: str, few_shot: int
    ) -> ToolTask:
        from tiergate.routing.route import RouteError

        settings = validated(ToolSettings, raw, path, RouteError)
        return cls(max_tokens=settings.max_tokens)

    # -- data ---------------------------------------------------------------------------------

    def example(self, row: Mapping[str, Any], where: str, require_labels: bool = True) -> Example:
        """A row ``{"id", "text", "request": {messages, tools, system?}, "label": gold}`` (as
        ``tiergate.tasks.tool_bfcl.convert_row`` writes them)."""
        from tiergate.datasets import GOLD, UNLABELLED, DatasetError, Example, row_id

        request = row.get("request")
        if not isinstance(request, Mapping) or not isinstance(request.get("messages"), list):
            raise DatasetError(where, None, "row has no request with messages")
        tools = request.get("tools")
        if not isinstance(tools, list) or not all(isinstance(t, Mapping) for t in tools):
            raise DatasetError(where, None, "request.tools must be a list of tools")
        text = row.get("text") or last_user_text(request)
        label = row.get("label")
        if label is None:
            if require_labels:
                raise DatasetError(where, None, "row has no label (the gold calls)")
            return Example(str(text), "", UNLABELLED, row_id(row), request)
        if not isinstance(label, Mapping) or "calls" not in label:
            raise DatasetError(where, None, 'label must be {"calls": [...], ...}')
        if label["calls"] is not None and not isinstance(label["calls"], list):
            raise DatasetError(where, None, "label.calls must be a list or null")
        provenance = str(row.get("provenance") or GOLD)
        return Example(str(text), dict(label), provenance, row_id(row), request)

    def known_gold(self, gold: Payload) -> bool:
        return isinstance(gold, Mapping) and "calls" in gold

    def stratum(self, gold: Payload) -> str:
        return str(gold.get("category", "")) if isinstance(gold, Mapping) else ""

    # -- building requests --------------------------------------------------------------------

    def request(self, model: ModelPrice, item: Item, context: Context) -> dict[str, Any]:
        if item.request is None:
            raise ToolRequestError(
                "a tool decision needs the whole request (messages and tools), not only a text"
            )
        body = instructed(item.request)
        body["model"] = model.name
        body["max_tokens"] = self.max_tokens
        body.pop("stream", None)
        return body

    def read(self, model: ModelPrice, message: Mapping[str, Any]) -> Reading:
        reason = message.get("stop_reason")
        if reason == "refusal":
            return Reading(None, "the model refused")
        if reason == "max_tokens":
            return Reading(None, "the answer was cut off at max_tokens")
        calls = decision_of(message)
        stated = stated_confidence(message)
        return Reading(calls, None, stated, text_of(message)[:500])

    def features(self, reading: Reading, item: Item, context: Context) -> dict[str, float]:
        calls: list[dict[str, Any]] = reading.payload or []
        tools = list((item.request or {}).get("tools") or [])
        stated = reading.stated_confidence
        features = {
            "stated_confidence": 0.5 if stated is None else stated,
            "stated_missing": 1.0 if stated is None else 0.0,
            "no_call": 0.0 if calls else 1.0,
            "calls": float(len(calls)),
            "unknown_tool": float(
                sum(1 for c in calls if c["name"] not in {t.get("name") for t in tools})
            ),
        }
        if context.earlier:  # a tier above another: do their decisions agree?
            features["agrees_with_below"] = (
                1.0 if self.agree(calls, context.earlier[-1][1]) else 0.0
            )
        features.update(validity_features(calls, tools))
        features.update(similarity_features(item.text, tools, [c["name"] for c in calls]))
        return features

    # -- judging ------------------------------------------------------------------------------

    def correct(self, payload: Payload, gold: Payload) -> bool:
        if payload is None:
            return False
        if isinstance(gold, list):  # a tier's decision standing in for gold
            return self.agree(payload, gold)
        return isinstance(gold, Mapping) and decision_correct(payload, gold)

    def agree(self, first: Payload, second: Payload) -> bool:
        if first is None or second is None:
            return False
        return Counter(map(_call_key, first)) == Counter(map(_call_key, second))

    def report(
        self,
        payloads: Sequence[Payload | None],
        golds: Sequence[Payload],
        accepted: Sequence[bool],
    ) -> dict[str, Any]:
        """Per category (BFCL's): items, accuracy of final answers, accepted share and the
        accepted answers' accuracy."""
        table: dict[str, dict[str, int]] = {}
        for payload, gold, taken in zip(payloads, golds, accepted, strict=True):
            row = table.setdefault(
                self.stratum(gold) or "-", {"items": 0, "right": 0, "accepted": 0, "taken": 0}
            )
            right = self.correct(payload, gold)
            row["items"] += 1
            row["right"] += right
            row["accepted"] += taken
            row["taken"] += taken and right
        return {
            "categories": {
                name: {
                    "items": row["items"],
                    "accuracy": row["right"] / row["items"],
                    "accepted_share": row["accepted"] / row["items"],
                    "accepted_accuracy": row["taken"] / row["accepted"]
                    if row["accepted"]
                    else None,
                }
                for name, row in sorted(table.items())
            }
        }

    def scenario(self, examples: Sequence[Example], name: str) -> Any:
        from tiergate.emulator.tool_scenario import tool_scenario_from_examples

        return tool_scenario_from_examples(examples, name=name)

    # -- presenting ---------------------------------------------------------------------------

    def render(self, payload: Payload) -> str:
        if not payload:
            return "no tool call"
        return "; ".join(
            f"{call['name']}({orjson.dumps(call['arguments']).decode()})" for call in payload
        )

    def describe(self, payload: Payload | None) -> str:
        return "-" if payload is None else self.render(payload)


def instructed(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request with the confidence instruction added at the end of its system prompt."""
    body = dict(request)
    system = body.get("system")
    block = {"type": "text", "text": CONFIDENCE_INSTRUCTION}
    if isinstance(system, str) and system:
        body["system"] = [{"type": "text", "text": system}, block]
    elif isinstance(system, list):
        body["system"] = [*system, block]
    else:
        body["system"] = [block]
    return body


def decision_of(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The calls in a Messages response, in order."""
    return [
        {"name": str(block.get("name")), "arguments": block.get("input") or {}}
        for block in message.get("content") or []
        if block.get("type") == "tool_use"
    ]


def text_of(message: Mapping[str, Any]) -> str:
    return "\n".join(
        str(block.get("text", ""))
        for block in message.get("content") or []
        if block.get("type") == "text"
    )


def stated_confidence(message: Mapping[str, Any]) -> float | None:
    match = _CONFIDENCE.search(text_of(message))
    if match is None:
        return None
    value = float(match.group(1))
    return value if 0.0 <= value <= 1.0 else None


def without_confidence(message: Mapping[str, Any]) -> dict[str, Any]:
    """The response as the client should see it: the ``confidence:`` line (asked for by
    tiergate, not by the client) taken out, and text blocks it leaves empty dropped."""
    content = []
    for block in message.get("content") or []:
        if block.get("type") == "text":
            text = _CONFIDENCE_LINE.sub("", str(block.get("text", "")), count=1)
            if not text.strip():
                continue
            block = {**block, "text": text}
        content.append(block)
    return {**message, "content": content}


def last_user_text(request: Mapping[str, Any]) -> str:
    for message in reversed(request.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    str(block.get("text", ""))
                    for block in content
                    if isinstance(block, Mapping) and block.get("type") == "text"
                )
    return ""


def _call_key(call: Mapping[str, Any]) -> str:
    return (
        api_name(str(call.get("name")))
        + orjson.dumps(call.get("arguments") or {}, option=orjson.OPT_SORT_KEYS).decode()
    )
