"""Classification: one label from a fixed set (ticket routing, intents).

The payload is the label (a string). A Claude tier sees the label taxonomy in a stable system
prompt (padded with fixed labelled examples to the model's cacheable minimum), the item's
nearest labelled examples from the local model, and answers with a label, a confidence and a
reason. A label outside the set is unusable. Features: the stated confidence, the local model's
probability for the label, whether it agrees with the local top choice, the neighbour vote, the
local margin and the nearest similarity. Thresholds may be kept per label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict

from tiergate.tasks.base import Context, Item, Payload, Reading, StructuredTask, relative
from tiergate.validation import validated, yaml_problem

if TYPE_CHECKING:
    from tiergate.datasets import Example
    from tiergate.tiers.base import LocalView

# Fixed labelled examples per label that may pad the system prompt to the cacheable minimum.
PADDING_PER_LABEL = 6


class ClassifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: str | list[str | dict[str, Any]] | dict[str, str | None]
    out_of_scope_label: str | None = None


@dataclass(frozen=True, slots=True)
class Label:
    name: str
    description: str = ""


class ClassifyTask(StructuredTask):
    kind: ClassVar[str] = "classify"
    tool_name: ClassVar[str] = "route_ticket"
    tool_description: ClassVar[str] = "Route the ticket to one queue."

    def __init__(
        self,
        labels: Sequence[Label],
        *,
        description: str = "",
        few_shot: int = 8,
        out_of_scope_label: str | None = None,
        padding_examples: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.labels = tuple(labels)
        self.label_names = [label.name for label in self.labels]
        self._label_set = frozenset(self.label_names)
        self.description = description
        self.few_shot = few_shot
        self.out_of_scope_label = out_of_scope_label
        self.padding_examples = list(padding_examples)

    @classmethod
    def from_route(
        cls, raw: Mapping[str, Any], path: Path, *, description: str, few_shot: int
    ) -> ClassifyTask:
        from tiergate.routing.route import RouteError

        settings = validated(ClassifySettings, raw, path, RouteError)
        labels = read_labels(settings.labels, path)
        names = [label.name for label in labels]
        if settings.out_of_scope_label is not None and settings.out_of_scope_label not in names:
            raise RouteError(
                f"{path}: out_of_scope_label: {settings.out_of_scope_label!r} is not one of the "
                "labels"
            )
        return cls(
            labels,
            description=description,
            few_shot=few_shot,
            out_of_scope_label=settings.out_of_scope_label,
        )

    def prepared(self, pool: Sequence[Example]) -> ClassifyTask:
        """Fixed labelled examples, round robin over labels: the cache-padding pool."""
        by_label: dict[str, list[str]] = {}
        for example in pool:
            bucket = by_label.setdefault(str(example.label), [])
            if len(bucket) < PADDING_PER_LABEL:
                bucket.append(example.text)
        chosen: list[tuple[str, str]] = []
        for round_number in range(PADDING_PER_LABEL):
            for label in sorted(by_label):
                texts = by_label[label]
                if round_number < len(texts):
                    chosen.append((texts[round_number], label))
        return replace_padding(self, chosen)

    def check_gold(self, examples: Sequence[Example], source: str) -> None:
        from tiergate.routing.runtime import RuntimeSetupError

        known = set(self.label_names)
        unknown = sorted({str(e.label) for e in examples if e.label} - known)
        if unknown:
            shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise RuntimeSetupError(f"{source}: labels not in the route's label set: {shown}")

    # -- the prompt ---------------------------------------------------------------------------

    def instructions(self) -> str:
        lines = ["Labels:"]
        for label in self.labels:
            lines.append(
                f"- {label.name}: {label.description}" if label.description else f"- {label.name}"
            )
        return (
            "You route customer support tickets to the right queue.\n"
            f"{self.description}\n"
            "Choose exactly one label from the list below. Give your confidence that the label "
            "is right as a probability between 0 and 1: be honest, tickets that fit no label or "
            "two labels equally deserve a low confidence. Give a one-sentence reason."
            "\n\n" + "\n".join(lines)
        )

    def padding_title(self) -> str:
        return "Examples of labelled tickets:"

    def padding(self) -> Sequence[str]:
        return [example_line(text, label) for text, label in self.padding_examples]

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": self.label_names, "description": "the queue"},
                "confidence": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "description": "probability that the label is right",
                },
                "reason": {"type": "string", "description": "one short sentence"},
            },
            "required": ["label", "confidence", "reason"],
            "additionalProperties": False,
        }

    def user_message(self, item: Item, context: Context) -> str:
        parts = []
        neighbours = list(context.local.neighbours[: self.few_shot]) if context.local else []
        if neighbours:
            parts.append(
                "Labelled tickets similar to this one:\n"
                + "\n".join(example_line(n.text, n.label) for n in neighbours)
            )
        parts.append(f"<ticket>{item.text}</ticket>")
        parts.append("Route this ticket.")
        return "\n\n".join(parts)

    # -- reading ------------------------------------------------------------------------------

    def payload_of(self, answer: Mapping[str, Any]) -> tuple[Payload | None, str | None]:
        label = answer.get("label")
        if not isinstance(label, str) or label not in self._label_set:
            return None, f"label outside the label set: {label!r}"
        return label, None

    def features(self, reading: Reading, item: Item, context: Context) -> dict[str, float]:
        features: dict[str, float] = {}
        if reading.stated_confidence is not None:
            features["stated_confidence"] = reading.stated_confidence
        if isinstance(reading.payload, str):
            features.update(agreement_features(reading.payload, context.local))
        return features

    # -- judging ------------------------------------------------------------------------------

    def correct(self, payload: Payload, gold: Payload) -> bool:
        return payload is not None and payload == gold

    def threshold_key(self, payload: Payload) -> str:
        return str(payload)

    def stratum(self, gold: Payload) -> str:
        return str(gold)

    def report(
        self,
        payloads: Sequence[Payload | None],
        golds: Sequence[Payload],
        accepted: Sequence[bool],
    ) -> dict[str, Any]:
        if self.out_of_scope_label is None:
            return {}
        return {"out_of_scope": out_of_scope(self.out_of_scope_label, payloads, golds, accepted)}

    def render(self, payload: Payload) -> str:
        return str(payload)


def replace_padding(task: ClassifyTask, padding: Sequence[tuple[str, str]]) -> ClassifyTask:
    copy = ClassifyTask(
        task.labels,
        description=task.description,
        few_shot=task.few_shot,
        out_of_scope_label=task.out_of_scope_label,
        padding_examples=padding,
    )
    return copy


def read_labels(raw: Any, path: Path) -> tuple[Label, ...]:
    """Labels from the route: a file (YAML list or mapping), a list of names or
    ``{name, description}``, or a mapping of name to description."""
    from tiergate.routing.route import RouteError

    if isinstance(raw, str):
        file = relative(path.parent, raw)
        try:
            raw = yaml.safe_load(file.read_text("utf-8"))
        except OSError as error:
            raise RouteError(f"{path}: labels: cannot read {file}: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise RouteError(
                f"{path}: labels: {file} is not valid YAML: {yaml_problem(error)}"
            ) from None
        if isinstance(raw, dict):
            raw = raw.get("labels", raw)
    if isinstance(raw, dict):
        raw = [{"name": name, "description": text or ""} for name, text in raw.items()]
    if not isinstance(raw, list) or not raw:
        raise RouteError(f"{path}: labels: a non-empty list, a mapping, or a file of either")
    labels: list[Label] = []
    for item in raw:
        if isinstance(item, str):
            labels.append(Label(item))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            labels.append(Label(item["name"], str(item.get("description") or "")))
        else:
            raise RouteError(
                f"{path}: labels: a label is a name or {{name, description}}: {item!r}"
            )
    names = [label.name for label in labels]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RouteError(f"{path}: labels: duplicate labels: {', '.join(duplicates)}")
    return tuple(labels)


def example_line(text: str, label: str) -> str:
    return f"<example><text>{text}</text><label>{label}</label></example>"


def agreement_features(label: str, local: LocalView | None) -> dict[str, float]:
    """Features that say how well a label agrees with the local model's view of the ticket."""
    if local is None:
        return {}
    votes = [neighbour.label for neighbour in local.neighbours]
    share = votes.count(label) / len(votes) if votes else 0.0
    return {
        "local_probability": local.probability_of(label),
        "agrees_with_local": 1.0 if label == local.label else 0.0,
        "neighbour_vote": share,
        "local_margin": local.prediction.margin,
        "nearest_similarity": local.prediction.nearest_similarity,
    }


def out_of_scope(
    label: str,
    payloads: Sequence[Payload | None],
    golds: Sequence[Payload],
    accepted: Sequence[bool],
) -> dict[str, Any]:
    """In-scope and out-of-scope tickets apart: an out-of-scope ticket accepted with an in-scope
    label is the error that matters most (a cheap tier confidently routing what fits nowhere)."""
    rows = list(zip(payloads, golds, accepted, strict=True))
    outside = [(p, a) for p, g, a in rows if g == label]
    inside = [(p, g, a) for p, g, a in rows if g != label]
    taken_inside = [(p, g) for p, g, a in inside if a]
    return {
        "label": label,
        "out_of_scope_tickets": len(outside),
        "wrongly_accepted_share": (
            sum(1 for p, a in outside if a and p != label) / len(outside) if outside else None
        ),
        "accepted_as_out_of_scope_share": (
            sum(1 for p, a in outside if a and p == label) / len(outside) if outside else None
        ),
        "in_scope_tickets": len(inside),
        "in_scope_accepted_share": len(taken_inside) / len(inside) if inside else None,
        "in_scope_accepted_accuracy": (
            sum(p == g for p, g in taken_inside) / len(taken_inside) if taken_inside else None
        ),
    }
