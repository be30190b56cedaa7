"""Structured extraction: a JSON object of fields, valid against the route's JSON Schema.

The payload is the object. A Claude tier sees the instructions and fixed labelled examples in a
stable system prompt (padded to the model's cacheable minimum) and answers with the object plus
a confidence, by forced tool call or ``output_config.format`` as the price book says. The model
is sent the schema with validation-only keywords left out (conditionals, length bounds); the
whole schema is checked on every answer, and an answer that fails it (a required field missing,
a value of the wrong type, a field the intent does not allow) is unusable: it escalates.

Features: the stated confidence, the share of string values found in the document (values are
usually copied from it: a value with extra or changed words is often not), and the number of
fields (more fields, more ways to be wrong). An answer is correct when every field is right: the
same fields as the gold answer, each equal under its comparison (``tasks/fields.py``). One
threshold for all answers, or one per value of a field or per set of fields present (``group_by``).

Route settings (beside the common ones)::

    task: extract
    schema: schema.json            # a JSON Schema file beside the route, or the schema inline
    compare: {intent: exact, "slots.*": casefold}   # per field path or glob (tasks/fields.py)
    default_compare: casefold      # fields no rule names
    group_by: intent               # optional: splits keep its values balanced, per_tier
                                   # thresholds may be kept per value; "*": per field set
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tiergate.tasks.base import Context, Item, Payload, Reading, StructuredTask, relative
from tiergate.tasks.fields import Comparison, comparison_for, flatten, folded, same
from tiergate.validation import validated

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

    from tiergate.datasets import Example

# Fixed labelled examples that may pad the system prompt to the cacheable minimum.
PADDING_EXAMPLES = 120
CONFIDENCE = "confidence"
FIELD_SET = "*"  # group_by: answers are grouped by the set of fields they have
# Keywords that only validate (the answer is checked against them here), left out of the schema
# the model is given: structured output constrains the shape, tiergate checks the rest.
VALIDATION_ONLY = frozenset(
    {
        "$schema",
        "$id",
        "if",
        "then",
        "else",
        "propertyNames",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
    }
)


class ExtractSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: str | dict[str, Any] = Field(alias="schema")
    compare: dict[str, Comparison] = Field(default_factory=dict)
    default_compare: Comparison = "casefold"
    group_by: str | None = None


class ExtractTask(StructuredTask):
    kind: ClassVar[str] = "extract"
    tool_name: ClassVar[str] = "extract_fields"
    tool_description: ClassVar[str] = "Give the fields extracted from the document."
    max_tokens: ClassVar[int] = 600
    confidence_field: ClassVar[str] = CONFIDENCE
    trains_local_model: ClassVar[bool] = False

    def __init__(
        self,
        schema: Mapping[str, Any],
        *,
        compare: Mapping[str, Comparison] | None = None,
        default_compare: Comparison = "casefold",
        group_by: str | None = None,
        description: str = "",
        padding_examples: Sequence[tuple[str, Payload]] = (),
    ) -> None:
        from jsonschema import Draft202012Validator, validators

        self.answer_schema = dict(schema)
        cls = validators.validator_for(self.answer_schema, default=Draft202012Validator)
        self._validator: Validator = cls(self.answer_schema)
        self.compare = dict(compare or {})
        self.default_compare = default_compare
        self.group_by = group_by
        self.description = description
        self.padding_examples = list(padding_examples)
        self.chosen_fields = chosen_fields(self.answer_schema)

    @classmethod
    def from_route(
        cls, raw: Mapping[str, Any], path: Path, *, description: str, few_shot: int
    ) -> ExtractTask:
        from jsonschema import SchemaError, validators

        from tiergate.routing.route import RouteError

        settings = validated(ExtractSettings, raw, path, RouteError)
        schema = read_schema(settings.schema_, path)
        try:
            validators.validator_for(schema).check_schema(schema)
        except SchemaError as error:
            raise RouteError(f"{path}: schema: not a valid JSON Schema: {error.message}") from None
        if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
            raise RouteError(f"{path}: schema: the root must be an object with properties")
        if CONFIDENCE in schema["properties"]:
            raise RouteError(
                f"{path}: schema: a field named {CONFIDENCE!r} clashes with the stated confidence"
            )
        return cls(
            schema,
            compare=settings.compare,
            default_compare=settings.default_compare,
            group_by=settings.group_by,
            description=description,
        )

    def prepared(self, pool: Sequence[Example]) -> ExtractTask:
        """Fixed labelled examples, round robin over groups: the cache-padding pool."""
        by_group: dict[str, list[tuple[str, Payload]]] = {}
        for example in pool:
            if isinstance(example.label, dict) and example.label:
                bucket = by_group.setdefault(self.stratum(example.label), [])
                bucket.append((example.text, example.label))
        chosen: list[tuple[str, Payload]] = []
        for index in range(PADDING_EXAMPLES):
            for group in sorted(by_group):
                if index < len(by_group[group]) and len(chosen) < PADDING_EXAMPLES:
                    chosen.append(by_group[group][index])
        return ExtractTask(
            self.answer_schema,
            compare=self.compare,
            default_compare=self.default_compare,
            group_by=self.group_by,
            description=self.description,
            padding_examples=chosen,
        )

    def check_gold(self, examples: Sequence[Example], source: str) -> None:
        from tiergate.routing.runtime import RuntimeSetupError

        for example in examples:
            if not self.known_gold(example.label):
                continue
            problem = self.schema_problem(example.label)
            if problem is not None:
                where = example.id or example.text[:40]
                raise RuntimeSetupError(f"{source}: gold of {where} fails the schema: {problem}")

    def example(self, row: Mapping[str, Any], where: str, require_labels: bool = True) -> Example:
        """A text and a gold object (``label``, or ``fields`` as the SNIPS copy names it)."""
        from tiergate.datasets import GOLD, UNLABELLED, DatasetError, Example, row_id

        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DatasetError(where, None, "row has no text")
        gold = row.get("label", row.get("fields"))
        if gold in (None, "", {}):
            if require_labels:
                raise DatasetError(where, None, "row has no label (the gold object)")
            return Example(text, {}, UNLABELLED, row_id(row))
        if not isinstance(gold, dict):
            raise DatasetError(where, None, "label must be a JSON object of fields")
        return Example(text, gold, str(row.get("provenance") or GOLD), row_id(row))

    # -- the prompt ---------------------------------------------------------------------------

    def instructions(self) -> str:
        return (
            "You extract fields from a document into a JSON object with the given schema.\n"
            f"{self.description}\n"
            "Copy each value exactly as it is written in the document: no extra words, no "
            "rewording, no change of format. Leave out a field the document does not give. "
            f"Give your confidence that every field is right, as a probability between 0 and 1, "
            f"in `{CONFIDENCE}`: be honest, an ambiguous document deserves a low confidence."
        )

    def padding_title(self) -> str:
        return "Examples of documents and their fields:"

    def padding(self) -> Sequence[str]:
        return [example_line(text, fields) for text, fields in self.padding_examples]

    def schema(self) -> dict[str, Any]:
        model_schema = for_model(self.answer_schema)
        properties = dict(model_schema.get("properties") or {})
        properties[CONFIDENCE] = {
            "type": "number",
            "description": "probability that every field is right",
        }
        required = [*model_schema.get("required", []), CONFIDENCE]
        return {**model_schema, "properties": properties, "required": required}

    def user_message(self, item: Item, context: Context) -> str:
        return f"<document>{item.text}</document>\n\nExtract the fields of this document."

    # -- reading ------------------------------------------------------------------------------

    def payload_of(self, answer: Mapping[str, Any]) -> tuple[Payload | None, str | None]:
        fields = {key: value for key, value in answer.items() if key != CONFIDENCE}
        problem = self.schema_problem(fields)
        return (None, problem) if problem is not None else (fields, None)

    def schema_problem(self, value: Any) -> str | None:
        """Why a value fails the route's schema (the first error found), or None."""
        error = next(iter(self._validator.iter_errors(value)), None)
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        return f"schema: {where}: {error.message}"[:300]

    def features(self, reading: Reading, item: Item, context: Context) -> dict[str, float]:
        features: dict[str, float] = {}
        if reading.stated_confidence is not None:
            features["stated_confidence"] = reading.stated_confidence
        if isinstance(reading.payload, dict):
            features.update(grounding(reading.payload, item.text, self.chosen_fields))
        return features

    # -- judging ------------------------------------------------------------------------------

    def field_right(self, path: str, answer: Payload, gold: Payload) -> bool:
        """Whether one field of an answer is right (absent in both counts as right)."""
        mine, truth = flatten(answer).get(path), flatten(gold).get(path)
        if mine is None or truth is None:
            return mine is None and truth is None
        return same(comparison_for(path, self.compare, self.default_compare), mine, truth)

    def correct(self, payload: Payload, gold: Payload) -> bool:
        if not isinstance(payload, dict) or not isinstance(gold, dict):
            return False
        mine, truth = flatten(payload), flatten(gold)
        if mine.keys() != truth.keys():
            return False
        return all(
            same(comparison_for(path, self.compare, self.default_compare), mine[path], value)
            for path, value in truth.items()
        )

    def threshold_key(self, payload: Payload) -> str:
        return self.stratum(payload)

    def stratum(self, gold: Payload) -> str:
        if self.group_by is None or not isinstance(gold, dict):
            return ""
        if self.group_by == FIELD_SET:
            return ",".join(sorted(flatten(gold)))
        value = flatten(gold).get(self.group_by)
        return "" if value is None else str(value)

    def report(
        self,
        payloads: Sequence[Payload | None],
        golds: Sequence[Payload],
        accepted: Sequence[bool],
    ) -> dict[str, Any]:
        return field_report(self, payloads, golds, accepted)

    def scenario(self, examples: Sequence[Example], name: str) -> Any:
        from tiergate.emulator.extract_scenario import extract_scenario_from_examples

        return extract_scenario_from_examples(examples, name=name)

    # -- presenting ---------------------------------------------------------------------------

    def render(self, payload: Payload) -> str:
        return json.dumps(payload, ensure_ascii=False)


def read_schema(raw: str | dict[str, Any], path: Path) -> dict[str, Any]:
    """The schema inline, or from a JSON file beside the route."""
    from tiergate.routing.route import RouteError

    if isinstance(raw, dict):
        return raw
    file = relative(path.parent, raw)
    try:
        loaded = json.loads(file.read_text("utf-8"))
    except OSError as error:
        raise RouteError(f"{path}: schema: cannot read {file}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise RouteError(f"{path}: schema: {file} is not valid JSON: {error}") from None
    if not isinstance(loaded, dict):
        raise RouteError(f"{path}: schema: {file} must hold a JSON object")
    return loaded


def for_model(schema: Any) -> Any:
    """The schema without validation-only keywords (and ``allOf`` parts left empty by that)."""
    if isinstance(schema, list):
        return [for_model(part) for part in schema]
    if not isinstance(schema, Mapping):
        return schema
    kept: dict[str, Any] = {}
    for key, value in schema.items():
        if key in VALIDATION_ONLY:
            continue
        if key == "properties" and isinstance(value, Mapping):
            kept[key] = {name: for_model(inner) for name, inner in value.items()}
            continue
        inner = for_model(value)
        if key == "allOf":
            inner = [part for part in inner if part]
            if not inner:
                continue
        kept[key] = inner
    return kept


def chosen_fields(schema: Mapping[str, Any], prefix: str = "") -> frozenset[str]:
    """Paths of the fields whose value is chosen from a set (``enum``, ``const``), not copied
    from the document."""
    found: set[str] = set()
    for name, inner in (schema.get("properties") or {}).items():
        if not isinstance(inner, Mapping):
            continue
        path = f"{prefix}.{name}" if prefix else str(name)
        if "enum" in inner or "const" in inner:
            found.add(path)
        found |= chosen_fields(inner, path)
    return frozenset(found)


def grounding(
    payload: Mapping[str, Any], text: str, chosen: frozenset[str] = frozenset()
) -> dict[str, float]:
    """How much of the answer is copied from the document (string values outside ``chosen``
    found in it), and how many fields it has."""
    document = folded(text)
    values = [
        item
        for path, value in flatten(payload).items()
        if path not in chosen
        for item in (value if isinstance(value, list) else [value])
        if isinstance(item, str)
    ]
    found = sum(1 for value in values if folded(value) in document)
    return {
        "grounded_share": found / len(values) if values else 1.0,
        "field_count": float(len(flatten(payload))),
    }


def example_line(text: str, fields: Payload) -> str:
    return (
        f"<example><document>{text}</document>"
        f"<fields>{json.dumps(fields, ensure_ascii=False)}</fields></example>"
    )


def field_report(
    task: ExtractTask,
    payloads: Sequence[Payload | None],
    golds: Sequence[Payload],
    accepted: Sequence[bool],
) -> dict[str, Any]:
    """Per field: the share of documents where the final answer has it right, among documents
    where the gold or the answer has the field (all final answers, and accepted ones)."""
    paths = sorted(
        {
            path
            for value in (*payloads, *golds)
            if isinstance(value, dict)
            for path in flatten(value)
        }
    )
    rows = list(zip(payloads, golds, accepted, strict=True))

    def accuracy(path: str, only_accepted: bool) -> float | None:
        seen = [
            (answer, gold)
            for answer, gold, taken in rows
            if (taken or not only_accepted)
            and (path in flatten(gold) or path in flatten(answer or {}))
        ]
        if not seen:
            return None
        return sum(task.field_right(path, answer or {}, gold) for answer, gold in seen) / len(seen)

    return {
        "field_accuracy": {path: accuracy(path, False) for path in paths},
        "accepted_field_accuracy": {path: accuracy(path, True) for path in paths},
        "document_accuracy": (
            sum(a is not None and task.correct(a, g) for a, g, _ in rows) / len(rows)
            if rows
            else None
        ),
    }
