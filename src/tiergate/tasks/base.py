"""The task seam: what one kind of work is, told to every layer that handles it.

A *task* builds a tier's request from an item, reads a tier's answer into a *payload* (plain
JSON: a label, an object of fields, a list of tool calls) with confidence features and, when the
answer is unusable, a *problem* (the engine escalates it, never returns it), says when two
answers agree and when one is right against gold, which key a threshold is kept under, and how
the gateway renders an answer. The engine, fitting, evaluation, learning, the bulk runner and
the gateway never look inside a payload.

Adding a kind of work is one module in this folder (a :class:`Task` subclass named in
``tiergate.tasks.TASKS``) plus, for offline runs, its emulator scenario.

:class:`StructuredTask` is the common case: the answer comes as a JSON object with a schema, by
a forced tool call where the model allows it and by ``output_config.format`` elsewhere (the
price book says which), with a stable system prompt padded to the model's cacheable minimum.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tiergate.core.tokens import estimate_tokens

if TYPE_CHECKING:
    from tiergate.core.prices import ModelPrice
    from tiergate.datasets import Example
    from tiergate.tiers.base import LocalView

# JSON: a label (str), an object of fields (dict), a list of calls (list).
Payload = Any
# The padding aims 10% over the cacheable minimum, so an estimate on the low side still reaches it.
CACHE_MARGIN = 1.10


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to answer. ``text`` is what the local model and the prompts read; ``request``
    is the client's whole Messages request when there is one (agent turns carry tools)."""

    text: str
    id: str | None = None
    request: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What a tier may use beyond the item: the local model's view of it (few-shot neighbours,
    the local answer to agree or disagree with), and the usable answers of the tiers below it
    on this item in ladder order, ``(tier, payload)`` (for a task whose features say whether
    tiers agree: ``Task.uses_earlier_answers``)."""

    local: LocalView | None = None
    earlier: tuple[tuple[str, Payload], ...] = ()


@dataclass(frozen=True)
class Reading:
    """A tier's answer as the task reads it."""

    payload: Payload | None
    problem: str | None = None
    stated_confidence: float | None = None
    reason: str = ""

    @property
    def usable(self) -> bool:
        return self.payload is not None and self.problem is None


@dataclass(frozen=True)
class Cached:
    """A stable system prompt and whether it reaches the model's cacheable minimum."""

    text: str
    cacheable: bool


class Task(ABC):
    """One kind of work. Built from a route's settings by :meth:`from_route`."""

    kind: ClassVar[str]
    # Whether `tiergate train` has a local model to train for this task (one label per item).
    trains_local_model: ClassVar[bool] = True

    # Features read the answers of the tiers below (Context.earlier). The ladder is then fitted
    # whole: a sub-ladder that skipped a tier would score the tiers above with an answer it
    # never paid for.
    uses_earlier_answers: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def from_route(
        cls, raw: Mapping[str, Any], path: Path, *, description: str, few_shot: int
    ) -> Task:
        """The task from a route file's task-specific settings (``raw``: every key the common
        route settings do not take); errors name ``path`` and the field."""

    def prepared(self, pool: Sequence[Example]) -> Task:
        """The task ready to build requests, given the labelled pool (padding examples)."""
        return self

    def check_gold(self, examples: Sequence[Example], source: str) -> None:
        """Refuse gold answers the task cannot take (a label outside the set, say)."""
        return None

    # -- building requests --------------------------------------------------------------------

    @abstractmethod
    def request(self, model: ModelPrice, item: Item, context: Context) -> dict[str, Any]:
        """The Messages API body for one item (also a batch request's ``params``)."""

    @abstractmethod
    def read(self, model: ModelPrice, message: Mapping[str, Any]) -> Reading:
        """Turn a Messages API response (as a dict) into a reading."""

    @abstractmethod
    def features(self, reading: Reading, item: Item, context: Context) -> dict[str, float]:
        """Confidence features of a usable reading, for the tier's calibrator."""

    # -- judging ------------------------------------------------------------------------------

    @abstractmethod
    def correct(self, payload: Payload, gold: Payload) -> bool:
        """Whether an answer is right against the gold answer."""

    def agree(self, first: Payload, second: Payload) -> bool:
        """Whether two tiers' answers say the same (by default: judged as against gold)."""
        return self.correct(first, second)

    def threshold_key(self, payload: Payload) -> str:
        """Which threshold an answer is judged by (a label, a field set, or one for all)."""
        return ""

    def known_gold(self, gold: Payload) -> bool:
        """Whether an example carries a gold answer (else the top tier's stands in)."""
        return gold not in (None, "", {}, [])

    def stratum(self, gold: Payload) -> str:
        """What splits keep balanced (a label for classification; one stratum by default)."""
        return ""

    # -- data and reports ---------------------------------------------------------------------

    def example(self, row: Mapping[str, Any], where: str, require_labels: bool = True) -> Example:
        """One example from a data row (JSONL object, CSV or TXT row); ``where`` names the file
        and line for errors. By default a text and a label."""
        from tiergate.datasets import example_from_row

        return example_from_row(row, where, require_labels)

    def report(
        self,
        payloads: Sequence[Payload | None],
        golds: Sequence[Payload],
        accepted: Sequence[bool],
    ) -> dict[str, Any]:
        """Task-specific figures for ``tiergate eval`` (per-field accuracy, out of scope...)."""
        return {}

    def scenario(self, examples: Sequence[Example], name: str) -> Any:
        """The emulator's scenario for offline runs (``tiergate.emulator``): how the emulated
        Claude answers this task's requests, built from labelled examples. By default the
        classification scenario (labels and assumed per-model accuracy)."""
        from tiergate.emulator.scenario_build import scenario_from_examples

        return scenario_from_examples(examples, name=name)

    # -- presenting ---------------------------------------------------------------------------

    @abstractmethod
    def render(self, payload: Payload) -> str:
        """The answer as the text of an assistant message (the gateway's answer)."""

    def describe(self, payload: Payload | None) -> str:
        """A short form for traces and tables."""
        if payload is None:
            return "-"
        return payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)


class StructuredTask(Task):
    """An answer that is a JSON object with a schema, a stated confidence among its fields.

    Subclasses give the instructions, the schema, how an item becomes the user message, how the
    structured object becomes a payload, and what pads the system prompt up to the cacheable
    minimum (labelled examples, usually).
    """

    tool_name: ClassVar[str] = "answer"
    tool_description: ClassVar[str] = "Give the answer."
    max_tokens: ClassVar[int] = 300
    confidence_field: ClassVar[str] = "confidence"

    @abstractmethod
    def instructions(self) -> str:
        """The stable part of the system prompt."""

    @abstractmethod
    def schema(self) -> dict[str, Any]:
        """The JSON schema of the structured answer."""

    @abstractmethod
    def user_message(self, item: Item, context: Context) -> str:
        """The user turn for one item."""

    @abstractmethod
    def payload_of(self, answer: Mapping[str, Any]) -> tuple[Payload | None, str | None]:
        """The payload in a structured answer, or a problem that makes it unusable."""

    def padding(self) -> Sequence[str]:
        """Blocks of text that may pad the system prompt to the cacheable minimum, in order."""
        return ()

    def padding_title(self) -> str:
        return "Examples:"

    def system_prompt(self, model: ModelPrice) -> Cached:
        """The stable system prompt, padded with :meth:`padding` up to ``model``'s minimum
        cacheable prefix where that is possible (4,096 cached tokens bill like 410 plain ones:
        padding is cheaper than leaving the prefix uncached)."""
        text = self.instructions()
        goal = model.min_cacheable_tokens * CACHE_MARGIN
        if estimate_tokens(text) >= goal:
            return Cached(text, True)
        chosen: list[str] = []
        for block in self.padding():
            chosen.append(block)
            padded = text + "\n\n" + self.padding_title() + "\n" + "\n".join(chosen)
            if estimate_tokens(padded) >= goal:
                return Cached(padded, True)
        if chosen:
            text += "\n\n" + self.padding_title() + "\n" + "\n".join(chosen)
        return Cached(text, False)

    def request(self, model: ModelPrice, item: Item, context: Context) -> dict[str, Any]:
        prompt = self._system(model)
        block: dict[str, Any] = {"type": "text", "text": prompt.text}
        if prompt.cacheable:
            block["cache_control"] = {"type": "ephemeral"}
        body: dict[str, Any] = {
            "model": model.name,
            "max_tokens": self.max_tokens,
            "system": [block],
            "messages": [{"role": "user", "content": self.user_message(item, context)}],
        }
        if model.forced_tool_choice:
            body["tools"] = [
                {
                    "name": self.tool_name,
                    "description": self.tool_description,
                    "input_schema": self.schema(),
                    "strict": True,
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": self.tool_name}
        else:
            body["output_config"] = {"format": {"type": "json_schema", "schema": self.schema()}}
        return body

    def _system(self, model: ModelPrice) -> Cached:
        cache: dict[str, Cached] = self.__dict__.setdefault("_system_cache", {})
        if model.name not in cache:
            cache[model.name] = self.system_prompt(model)
        return cache[model.name]

    def read(self, model: ModelPrice, message: Mapping[str, Any]) -> Reading:
        answer, problem = structured_answer(message, self.tool_name, model.forced_tool_choice)
        if answer is None:
            return Reading(None, problem)
        confidence = answer.get(self.confidence_field)
        if not (
            isinstance(confidence, int | float)
            and not isinstance(confidence, bool)
            and 0.0 <= float(confidence) <= 1.0
        ):
            return Reading(None, f"confidence is not a probability: {confidence!r}")
        payload, problem = self.payload_of(answer)
        if problem is not None:
            return Reading(None, problem, float(confidence))
        return Reading(payload, None, float(confidence), str(answer.get("reason", ""))[:500])


def structured_answer(
    message: Mapping[str, Any], tool_name: str, forced_tool: bool
) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object a structured answer carries (a tool call's input, or JSON text)."""
    if message.get("stop_reason") == "refusal":
        return None, "the model refused"
    for block in message.get("content") or []:
        if block.get("type") == "tool_use" and block.get("name") == tool_name:
            answer = block.get("input")
            if isinstance(answer, dict):
                return answer, None
            return None, "tool input is not an object"
        if block.get("type") == "text" and not forced_tool:
            try:
                answer = json.loads(block.get("text") or "")
            except json.JSONDecodeError:
                return None, "structured output is not valid JSON"
            if isinstance(answer, dict):
                return answer, None
            return None, "structured output is not an object"
    return None, f"no structured answer (stop_reason {message.get('stop_reason')})"


def relative(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path
