"""The classification prompt for the Claude tiers.

The system prompt is the stable part (instructions, the label taxonomy, and, when the taxonomy is
shorter than the model's minimum cacheable prefix, fixed labelled examples to reach it), marked
with ``cache_control`` so that repeated calls read it at 0.1x the input price. Padding a prefix up
to the minimum is cheaper than leaving it uncached: 4,096 cached tokens bill like 410 plain ones.
The user message carries the ticket's nearest labelled examples and the ticket itself, inside
``<ticket>`` tags (the emulator's scenario finds the ticket by those tags too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tiergate.classifier.prediction import Neighbour

TOOL_NAME = "route_ticket"


@dataclass(frozen=True, slots=True)
class Label:
    name: str
    description: str = ""


def answer_schema(labels: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": list(labels), "description": "the queue"},
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


def instructions(task_description: str) -> str:
    return (
        "You route customer support tickets to the right queue.\n"
        f"{task_description}\n"
        "Choose exactly one label from the list below. Give your confidence that the label is "
        "right as a probability between 0 and 1: be honest, tickets that fit no label or two "
        "labels equally deserve a low confidence. Give a one-sentence reason."
    )


def taxonomy(labels: Sequence[Label]) -> str:
    lines = ["Labels:"]
    for label in labels:
        lines.append(
            f"- {label.name}: {label.description}" if label.description else f"- {label.name}"
        )
    return "\n".join(lines)


def examples_block(title: str, examples: Sequence[tuple[str, str]]) -> str:
    lines = [title]
    for text, label in examples:
        lines.append(f"<example><text>{text}</text><label>{label}</label></example>")
    return "\n".join(lines)


def ticket_message(ticket_text: str, neighbours: Sequence[Neighbour]) -> str:
    parts = []
    if neighbours:
        parts.append(
            examples_block(
                "Labelled tickets similar to this one:",
                [(neighbour.text, neighbour.label) for neighbour in neighbours],
            )
        )
    parts.append(f"<ticket>{ticket_text}</ticket>")
    parts.append("Route this ticket.")
    return "\n\n".join(parts)
