"""The extraction scenario: which fields are true for a document, and how each model errs.

A scenario (``kind: extract``) maps document texts to gold objects and gives each model a
document accuracy (the share of documents it gets entirely right), a share of invalid objects,
and a confidence behaviour. Accuracies are assumptions for offline runs, never measurements.

How an answer is decided, deterministically per (seed, model, text):

- right or wrong as in the classification scenario (:func:`latent_right`): a difficulty per
  document shared by all models, correlated with each model's own noise. Unless the file gives
  one, a document's difficulty is its rank by number of fields (plus jitter): documents with
  more fields are harder;
- a wrong answer carries one realistic mistake (two now and then), chosen per (seed, text), so
  models that err on a document tend to err alike: a field dropped, a value with a neighbouring
  word of the document added, a value in another format (digits for number words, accents or
  punctuation dropped), a value under a similar field name (which may break the schema's
  rules), or a field made up from a word of the document;
- now and then (``invalid``), a required field is missing: an object that fails the schema;
- the stated confidence is Beta(right) or Beta(wrong), informative but overlapping.

The document is found in the last user turn by ``document_pattern`` (``<document>...</document>``
as ``tasks/extract.py`` writes it); the schema the request gives (tool input or output format)
says which fields are required and which names a field could be confused with.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tiergate.emulator.scenario import (
    DEFAULT_CORRELATION,
    BetaQuantiles,
    ScenarioError,
    behaviour_for,
    latent_right,
    normalize,
    uniform,
)

KIND = "extract"
DEFAULT_DOCUMENT_PATTERN = r"<document>(.*?)</document>"
NUMBER_WORDS = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen", "twenty"),
)
MISTAKES = ("drop", "extra_words", "format", "similar_field", "made_up")
# How often each mistake is chosen when it applies (the first that applies, from a draw).
MISTAKE_WEIGHTS = (0.3, 0.3, 0.2, 0.15, 0.05)
SECOND_MISTAKE = 0.2


@dataclass(frozen=True, slots=True)
class ExtractBehaviour:
    """P(document entirely right), P(invalid object), and Beta confidence shapes."""

    accuracy: float
    invalid: float = 0.01
    confidence_right: tuple[float, float] = (9.0, 2.0)
    confidence_wrong: tuple[float, float] = (4.0, 3.0)


# Assumptions, not measurements: override them per model in the scenario file.
DEFAULT_EXTRACT_BEHAVIOURS: dict[str, ExtractBehaviour] = {
    "haiku": ExtractBehaviour(0.80, invalid=0.02),
    "sonnet": ExtractBehaviour(0.90, invalid=0.01),
    "opus": ExtractBehaviour(0.93, invalid=0.005),
    "default": ExtractBehaviour(0.80, invalid=0.02),
}


@dataclass(frozen=True)
class ExtractAnswer:
    value: dict[str, Any]  # the object, confidence included
    correct: bool
    mistakes: tuple[str, ...]


@dataclass(frozen=True)
class ExtractScenario:
    items: Mapping[str, dict[str, Any]]  # normalised text -> gold object
    difficulty: Mapping[str, float] = field(default_factory=dict)
    behaviours: Mapping[str, ExtractBehaviour] = field(
        default_factory=lambda: DEFAULT_EXTRACT_BEHAVIOURS
    )
    correlation: float = DEFAULT_CORRELATION
    confidence_field: str = "confidence"
    document_pattern: re.Pattern[str] = re.compile(DEFAULT_DOCUMENT_PATTERN, re.DOTALL)
    name: str = "extract"
    _quantiles: dict[tuple[float, float], BetaQuantiles] = field(
        default_factory=dict, repr=False, compare=False
    )

    def behaviour(self, model: str, family: str) -> ExtractBehaviour:
        return behaviour_for(self.behaviours, DEFAULT_EXTRACT_BEHAVIOURS, model, family)

    def document(self, prompt_text: str) -> str | None:
        match = self.document_pattern.search(prompt_text)
        if match is None:
            return None
        return (match.group(1) if self.document_pattern.groups else match.group(0)).strip()

    def respond(
        self, seed: int, model: str, family: str, prompt: str, schema: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The object for the document in ``prompt`` (``ObjectScenario``); None if unknown."""
        document = self.document(prompt)
        found = None if document is None else self.answer(seed, model, family, document, schema)
        return None if found is None else found.value

    def answer(
        self, seed: int, model: str, family: str, text: str, schema: Mapping[str, Any]
    ) -> ExtractAnswer | None:
        """The model's object for a known document (``None`` for an unknown one)."""
        key = normalize(text)
        gold = self.items.get(key)
        if gold is None:
            return None
        behaviour = self.behaviour(model, family)
        right = latent_right(
            seed, model, key, behaviour.accuracy, self.difficulty.get(key), self.correlation
        )
        value = copy.deepcopy(gold)
        mistakes: list[str] = []
        if not right:
            # The model's confidence is not a field to get wrong.
            fields = _without(schema, self.confidence_field)
            mistakes.append(_mistake(value, text, fields, seed, key, 0))
            if uniform(seed, "second-mistake", key) < SECOND_MISTAKE:
                mistakes.append(_mistake(value, text, fields, seed, key, 1))
        if uniform(seed, f"invalid:{model}", key) < behaviour.invalid:
            required = [name for name in schema.get("required") or [] if name in value]
            if required:
                pick = int(uniform(seed, f"invalid-field:{model}", key) * len(required))
                del value[required[pick]]
                mistakes.append("invalid")
        shape = behaviour.confidence_right if right else behaviour.confidence_wrong
        if shape not in self._quantiles:
            self._quantiles[shape] = BetaQuantiles(*shape)
        draw = uniform(seed, f"confidence:{model}", key)
        value[self.confidence_field] = round(self._quantiles[shape].quantile(draw), 2)
        return ExtractAnswer(value, right and not mistakes, tuple(mistakes))


def _without(schema: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The schema without the root property ``name``."""
    properties = {k: v for k, v in (schema.get("properties") or {}).items() if k != name}
    return {**schema, "properties": properties}


def _leaves(value: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for key, inner in value.items():
        if isinstance(inner, Mapping):
            paths += _leaves(inner, (*prefix, key))
        else:
            paths.append((*prefix, key))
    return paths


def _objects(value: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The paths of the object and of every object inside it."""
    paths = [prefix]
    for key, inner in value.items():
        if isinstance(inner, Mapping):
            paths += _objects(inner, (*prefix, key))
    return paths


def _parent(value: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path[:-1]:
        value = value[key]
    return value


def _mistake(
    value: dict[str, Any], text: str, schema: Mapping[str, Any], seed: int, key: str, n: int
) -> str:
    """Apply one mistake to ``value`` in place; its name. Every kind that does not apply to
    this document passes to the next, so a wrong answer is always wrong."""
    draw = uniform(seed, f"mistake:{n}", key)
    start, total = 0, 0.0
    for index, weight in enumerate(MISTAKE_WEIGHTS):
        total += weight
        if draw < total:
            start = index
            break
    required = set(schema.get("required") or [])
    order = MISTAKES[start:] + MISTAKES[:start]
    for kind in order:
        if _apply(kind, value, text, schema, required, uniform(seed, f"{kind}:{n}", key)):
            return kind
    # Nothing applied (no optional field, no free name in the schema): a field the schema
    # does not have.
    value["note"] = text.split()[0] if text.split() else "note"
    return "made_up"


def _apply(
    kind: str,
    value: dict[str, Any],
    text: str,
    schema: Mapping[str, Any],
    required: set[str],
    draw: float,
) -> bool:
    leaves = [path for path in _leaves(value) if not (len(path) == 1 and path[0] in required)]
    strings = [path for path in leaves if isinstance(_parent(value, path)[path[-1]], str)]
    if kind == "drop" and leaves:
        path = leaves[int(draw * len(leaves))]
        del _parent(value, path)[path[-1]]
        return True
    if kind == "extra_words":
        for path in _rotated(strings, draw):
            longer = _with_neighbour(_parent(value, path)[path[-1]], text, draw)
            if longer is not None:
                _parent(value, path)[path[-1]] = longer
                return True
        return False
    if kind == "format":
        for path in _rotated(strings, draw):
            changed = _reformatted(_parent(value, path)[path[-1]])
            if changed is not None:
                _parent(value, path)[path[-1]] = changed
                return True
        return False
    if kind == "similar_field":
        for path in _rotated(leaves, draw):
            parent = _parent(value, path)
            names = [n for n in _property_names(schema, path[:-1]) if n not in parent]
            similar = _most_similar(path[-1], names)
            if similar is not None:
                parent[similar] = parent.pop(path[-1])
                return True
        return False
    if kind == "made_up":
        words = [word.strip(".,!?") for word in text.split() if len(word) > 3]
        for path in _rotated(_objects(value), draw):
            parent = _parent(value, (*path, ""))
            names = [n for n in _property_names(schema, path) if n not in parent]
            if names and words:
                parent[names[int(draw * len(names))]] = words[int(draw * len(words))]
                return True
        return False
    return False


def _rotated(paths: Sequence[tuple[str, ...]], draw: float) -> list[tuple[str, ...]]:
    if not paths:
        return []
    start = int(draw * len(paths))
    return [*paths[start:], *paths[:start]]


def _with_neighbour(current: str, text: str, draw: float) -> str | None:
    """The value with the word before or after it in the document (a boundary mistake)."""
    at = text.casefold().find(current.casefold())
    if at < 0 or not current:
        return None
    before = text[:at].split()
    after = text[at + len(current) :].split()
    if after and (draw < 0.5 or not before):
        return f"{current} {after[0].rstrip('.,!?')}"
    if before:
        return f"{before[-1]} {current}"
    return None


def _reformatted(current: str) -> str | None:
    """The value as a model might rewrite it: number words as digits (or back), accents and
    punctuation dropped."""
    words = current.split()
    lowered = [word.casefold() for word in words]
    if any(word in NUMBER_WORDS for word in lowered):
        return " ".join(
            str(NUMBER_WORDS.index(w)) if w in NUMBER_WORDS else word
            for word, w in zip(words, lowered, strict=True)
        )
    if any(word.isdigit() and int(word) < len(NUMBER_WORDS) for word in words):
        return " ".join(
            NUMBER_WORDS[int(word)] if word.isdigit() and int(word) < len(NUMBER_WORDS) else word
            for word in words
        )
    plain = "".join(
        char
        for char in unicodedata.normalize("NFKD", current)
        if not unicodedata.combining(char) and (char.isalnum() or char.isspace())
    )
    plain = " ".join(plain.split())
    return plain if plain and plain != current else None


def _property_names(schema: Mapping[str, Any], path: tuple[str, ...]) -> list[str]:
    """The property names the schema allows in the object at ``path``."""
    node: Any = schema
    for key in path:
        node = (node.get("properties") or {}).get(key) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        return []
    return [str(name) for name in node.get("properties") or {}]


def _most_similar(name: str, names: Sequence[str]) -> str | None:
    """The name sharing most word parts with ``name`` (ties by name); None if none shares."""
    own = set(re.split(r"[_\W]+", name.casefold())) - {""}
    scored = sorted(
        (-len(own & (set(re.split(r"[_\W]+", other.casefold())) - {""})), other) for other in names
    )
    return scored[0][1] if scored and scored[0][0] < 0 else None


def extract_scenario_from_examples(
    examples: Iterable[Any], *, name: str = "examples"
) -> ExtractScenario:
    """A scenario for labelled examples (``text`` and a gold object as ``label``)."""
    rows = [
        {"text": e.text, "label": e.label}
        for e in examples
        if isinstance(e.label, dict) and e.label
    ]
    return extract_scenario_from_dict({"kind": KIND, "name": name, "items": rows}, name)


def extract_scenario_from_dict(raw: Any, origin: str = "scenario") -> ExtractScenario:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("items"), list):
        raise ScenarioError(f"{origin}: an extract scenario needs an 'items' list")
    items: dict[str, dict[str, Any]] = {}
    given: dict[str, float] = {}
    for row in raw["items"]:
        if not isinstance(row, Mapping) or not isinstance(row.get("label"), dict):
            raise ScenarioError(f"{origin}: each item needs 'text' and a 'label' object")
        key = normalize(str(row.get("text", "")))
        if key and key not in items:
            items[key] = dict(row["label"])
            if row.get("difficulty") is not None:
                given[key] = float(row["difficulty"])
    if not items:
        raise ScenarioError(f"{origin}: no labelled items")
    correlation = float(raw.get("correlation", DEFAULT_CORRELATION))
    if not 0.0 <= correlation <= 1.0:
        raise ScenarioError(f"{origin}: correlation must be in [0, 1], got {correlation}")
    return ExtractScenario(
        items=items,
        difficulty={**_ranked_difficulty(items), **given},
        behaviours=_behaviours(raw.get("models") or {}, origin),
        correlation=correlation,
        confidence_field=str(raw.get("confidence_field", "confidence")),
        document_pattern=re.compile(
            str(raw.get("document_pattern", DEFAULT_DOCUMENT_PATTERN)), re.DOTALL
        ),
        name=str(raw.get("name", origin)),
    )


def _ranked_difficulty(items: Mapping[str, dict[str, Any]]) -> dict[str, float]:
    """Each document's rank by number of fields (jittered), scaled to (0, 1): uniform over the
    documents, so a model's accuracy stays what its behaviour says."""
    scored = sorted(
        (len(_leaves(gold)) + 2.0 * uniform(0, "jitter", key), key) for key, gold in items.items()
    )
    count = len(scored)
    return {key: (rank + 0.5) / count for rank, (_, key) in enumerate(scored)}


def _behaviours(raw: Mapping[str, Any], origin: str) -> dict[str, ExtractBehaviour]:
    behaviours = dict(DEFAULT_EXTRACT_BEHAVIOURS)
    for name, spec in raw.items():
        if not isinstance(spec, Mapping) or "accuracy" not in spec:
            raise ScenarioError(f"{origin}: model {name!r} needs an 'accuracy'")
        base = behaviours.get(str(name), DEFAULT_EXTRACT_BEHAVIOURS["default"])
        accuracy, invalid = float(spec["accuracy"]), float(spec.get("invalid", base.invalid))
        if not (0.0 <= accuracy <= 1.0 and 0.0 <= invalid <= 1.0):
            raise ScenarioError(f"{origin}: model {name!r}: accuracy and invalid are in [0, 1]")
        behaviours[str(name)] = ExtractBehaviour(
            accuracy,
            invalid,
            tuple(spec.get("confidence_right") or base.confidence_right),
            tuple(spec.get("confidence_wrong") or base.confidence_wrong),
        )
    return behaviours
