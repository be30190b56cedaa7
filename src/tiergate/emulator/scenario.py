"""The classification scenario: which label is true for a text, and how each model answers.

A scenario file (JSON or YAML, format in docs/emulator.md) maps ticket texts to true labels and
gives each model an accuracy and a confidence behaviour. Accuracies are assumptions made for
offline runs, never measurements of Claude.

How an answer is decided, deterministically per (seed, model, text):

- each text has a latent difficulty ``u`` in (0, 1), shared by all models (from the file, or
  drawn from (seed, text));
- each (model, text) has its own noise ``v``;
- with ``correlation`` rho, ``z = sqrt(rho) * Phi^-1(u) + sqrt(1 - rho) * Phi^-1(v)`` is standard
  normal, and the model is right when ``Phi(z) < accuracy``. So each model is right with exactly
  its accuracy on average, and models tend to fail on the same (hard) texts: at rho = 1 a more
  accurate model is right wherever a less accurate one is; at rho = 0 they are independent;
- a wrong answer is a plausible confusion: a label from the true label's confusable set
  (given in the file, else the labels sharing most words with it);
- the stated confidence is drawn from Beta(right) or Beta(wrong): informative, since right
  answers tend to state more, but overlapping, so not perfectly calibrated.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any, Protocol, TypeVar, runtime_checkable

import orjson
import yaml

from tiergate.emulator.agent_scenario import KIND as AGENT_KIND
from tiergate.emulator.agent_scenario import AgentScenario, agent_scenario_from_dict
from tiergate.errors import TiergateError

DEFAULT_TICKET_PATTERN = r"<ticket>(.*?)</ticket>"
DEFAULT_CORRELATION = 0.7
CONFUSABLE_COUNT = 3
_NORMAL = NormalDist()
_EDGE = 1e-9


class ScenarioError(TiergateError, ValueError):
    """The scenario file is unreadable or malformed."""


@dataclass(frozen=True, slots=True)
class ModelBehaviour:
    """How one model answers: P(right), and Beta(a, b) for the confidence when right / wrong."""

    accuracy: float
    confidence_right: tuple[float, float] = (9.0, 2.0)
    confidence_wrong: tuple[float, float] = (4.0, 3.0)


# Assumptions, not measurements: override them per model in the scenario file.
DEFAULT_BEHAVIOURS: dict[str, ModelBehaviour] = {
    "haiku": ModelBehaviour(0.85),
    "sonnet": ModelBehaviour(0.92),
    "opus": ModelBehaviour(0.94),
    "default": ModelBehaviour(0.85),
}


@dataclass(frozen=True, slots=True)
class FieldNames:
    label: str = "label"
    confidence: str = "confidence"
    reason: str = "reason"


@dataclass(frozen=True, slots=True)
class ScenarioAnswer:
    label: str
    confidence: float
    correct: bool
    reason: str


@dataclass(frozen=True)
class Scenario:
    items: Mapping[str, str]
    labels: tuple[str, ...]
    confusable: Mapping[str, tuple[str, ...]]
    behaviours: Mapping[str, ModelBehaviour] = field(default_factory=lambda: DEFAULT_BEHAVIOURS)
    difficulty: Mapping[str, float] = field(default_factory=dict)
    ticket_pattern: re.Pattern[str] = re.compile(DEFAULT_TICKET_PATTERN, re.DOTALL)
    fields: FieldNames = FieldNames()
    correlation: float = DEFAULT_CORRELATION
    name: str = "scenario"
    _quantiles: dict[tuple[float, float], BetaQuantiles] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        shapes = {DEFAULT_BEHAVIOURS["default"].confidence_right}
        shapes |= {DEFAULT_BEHAVIOURS["default"].confidence_wrong}
        for behaviour in self.behaviours.values():
            shapes |= {behaviour.confidence_right, behaviour.confidence_wrong}
        for shape in shapes:
            self._quantiles[shape] = BetaQuantiles(*shape)

    def ticket_text(self, prompt_text: str) -> str | None:
        """The ticket inside the prompt per ``ticket_pattern`` (group 1 if it has one)."""
        match = self.ticket_pattern.search(prompt_text)
        if match is None:
            return None
        return (match.group(1) if self.ticket_pattern.groups else match.group(0)).strip()

    def true_label(self, text: str) -> str | None:
        return self.items.get(normalize(text))

    def behaviour(self, model: str, family: str) -> ModelBehaviour:
        return behaviour_for(self.behaviours, DEFAULT_BEHAVIOURS, model, family)

    def answer(self, seed: int, model: str, family: str, text: str) -> ScenarioAnswer | None:
        """The model's answer for a known text; ``None`` for a text not in the scenario."""
        key = normalize(text)
        truth = self.items.get(key)
        if truth is None:
            return None
        behaviour = self.behaviour(model, family)
        correct = latent_right(
            seed, model, key, behaviour.accuracy, self.difficulty.get(key), self.correlation
        )
        label = truth if correct else self._wrong_label(seed, truth, key)
        shape = behaviour.confidence_right if correct else behaviour.confidence_wrong
        draw = uniform(seed, f"confidence:{model}", key)
        confidence = round(self._quantiles[shape].quantile(draw), 2)
        return ScenarioAnswer(label, confidence, correct, _reason(label))

    def _wrong_label(self, seed: int, truth: str, key: str) -> str:
        choices = self.confusable.get(truth) or tuple(
            label for label in self.labels if label != truth
        )
        if not choices:
            return truth
        # Chosen per text, not per model: models that err on a text tend to make the same error.
        return choices[int(uniform(seed, "wrong", key) * len(choices)) % len(choices)]


def normalize(text: str) -> str:
    return " ".join(text.split()).casefold()


def latent_right(
    seed: int, model: str, key: str, accuracy: float, difficulty: float | None, rho: float
) -> bool:
    """Whether ``model`` is right on the item ``key``: its latent difficulty (given, else drawn
    from (seed, key)) mixed with the model's own noise at correlation ``rho`` (module docstring)."""
    if difficulty is None:
        difficulty = uniform(seed, "difficulty", key)
    noise = uniform(seed, f"model:{model}", key)
    latent = math.sqrt(rho) * _NORMAL.inv_cdf(clip(difficulty)) + math.sqrt(
        1.0 - rho
    ) * _NORMAL.inv_cdf(noise)
    return _NORMAL.cdf(latent) < accuracy


def uniform(seed: int, purpose: str, key: str) -> float:
    """A uniform draw in (0, 1), fixed by (seed, purpose, key): reproducible in any order."""
    digest = hashlib.blake2b(f"{seed}|{purpose}|{key}".encode(), digest_size=8).digest()
    return clip((int.from_bytes(digest, "big") + 0.5) / 2**64)


B = TypeVar("B")  # a scenario's behaviour type


def behaviour_for(
    behaviours: Mapping[str, B], defaults: Mapping[str, B], model: str, family: str
) -> B:
    """A model's behaviour in a scenario: by model id, then family, then the scenario's
    default, then the built-in default."""
    for key in (model, family, "default"):
        if key in behaviours:
            return behaviours[key]
    return defaults["default"]


def clip(value: float) -> float:
    return min(1.0 - _EDGE, max(_EDGE, value))


class BetaQuantiles:
    """Quantiles of Beta(a, b) from a precomputed CDF grid (stdlib only; no scipy at runtime).

    Taking a quantile of a hashed uniform, rather than drawing from a stateful RNG, keeps a
    confidence reproducible per (seed, model, text) whatever the order of requests.
    """

    GRID = 2000

    def __init__(self, a: float, b: float) -> None:
        log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        width = 1.0 / self.GRID
        self._edges = [step * width for step in range(self.GRID + 1)]
        cdf = [0.0]
        for step in range(self.GRID):
            t = (step + 0.5) * width
            density = math.exp(log_norm + (a - 1) * math.log(t) + (b - 1) * math.log1p(-t))
            cdf.append(cdf[-1] + density * width)
        total = cdf[-1]
        self._cdf = [value / total for value in cdf]

    def quantile(self, p: float) -> float:
        index = min(self.GRID, max(1, bisect.bisect_left(self._cdf, p)))
        low, high = self._cdf[index - 1], self._cdf[index]
        share = (p - low) / (high - low) if high > low else 0.0
        return self._edges[index - 1] + share * (self._edges[index] - self._edges[index - 1])


def _reason(label: str) -> str:
    return f"The ticket reads as {label.replace('_', ' ')}."


def confusable_sets(labels: Iterable[str], count: int = CONFUSABLE_COUNT) -> dict[str, list[str]]:
    """For each label, the ``count`` others sharing most words with it (ties by name)."""
    words = {label: set(re.split(r"[_\s\-]+", label.casefold())) - {""} for label in labels}
    result: dict[str, list[str]] = {}
    for label, own in words.items():
        ranked = sorted(
            (other for other in words if other != label),
            key=lambda other: (-len(own & words[other]), other),
        )
        sharing = [other for other in ranked if own & words[other]]
        result[label] = (sharing or ranked)[:count]
    return result


@runtime_checkable
class ObjectScenario(Protocol):
    """A scenario that answers a structured request (a forced tool call or a JSON format) with
    an object of its own: a task's scenario (extraction, ...) is one, and plugs in with a module
    of its own and a ``kind`` in ``OBJECT_KINDS``."""

    @property
    def name(self) -> str: ...

    def respond(
        self, seed: int, model: str, family: str, prompt: str, schema: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The object answering a request whose last user turn is ``prompt`` and whose answer
        has ``schema``; None to answer as without a scenario."""
        ...


CLASSIFY_KIND = "classify"
# kind -> "module:function" reading such a scenario from a mapping (imported when used).
OBJECT_KINDS: dict[str, str] = {
    "extract": "tiergate.emulator.extract_scenario:extract_scenario_from_dict",
}
# A scenario of any kind; a file says which with ``kind`` (classify when it says nothing).
AnyScenario = Scenario | AgentScenario | ObjectScenario


def load_scenario(path: str | Path) -> AnyScenario:
    """Read a scenario file (JSON, or YAML by extension ``.yaml``/``.yml``) of either kind."""
    source = Path(path)
    try:
        raw_text = source.read_bytes()
        if source.suffix.lower() in (".yaml", ".yml"):
            raw = yaml.load(raw_text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        else:
            raw = orjson.loads(raw_text)
    except OSError as error:
        raise ScenarioError(f"cannot read scenario {source}: {error.strerror}") from None
    except (yaml.YAMLError, orjson.JSONDecodeError) as error:
        raise ScenarioError(f"scenario {source} is not valid JSON/YAML: {error}") from None
    kind = raw.get("kind", CLASSIFY_KIND) if isinstance(raw, Mapping) else CLASSIFY_KIND
    if kind == AGENT_KIND:
        return agent_scenario_from_dict(raw, origin=str(source))
    if kind in OBJECT_KINDS:
        module, function = OBJECT_KINDS[kind].split(":")
        reader = getattr(importlib.import_module(module), function)
        scenario: ObjectScenario = reader(raw, origin=str(source))
        return scenario
    if kind != CLASSIFY_KIND:
        kinds = ", ".join(repr(name) for name in (CLASSIFY_KIND, AGENT_KIND, *OBJECT_KINDS))
        raise ScenarioError(f"{source}: kind must be one of {kinds}")
    return scenario_from_dict(raw, origin=str(source))


def scenario_from_dict(raw: Any, origin: str = "scenario") -> Scenario:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("items"), list | Mapping):
        raise ScenarioError(f"{origin}: must be a mapping with an 'items' list or mapping")
    items, difficulty = _items(raw["items"], origin)
    labels = tuple(raw.get("labels") or sorted(set(items.values())))
    unknown = sorted(set(items.values()) - set(labels))
    if unknown:
        raise ScenarioError(f"{origin}: labels used by items but not listed: {unknown[:5]}")
    given = raw.get("confusable") or {}
    computed = confusable_sets(labels)
    confusable: dict[str, tuple[str, ...]] = {
        label: tuple(str(other) for other in (given.get(label) or computed.get(label) or ()))
        for label in labels
    }
    fields = raw.get("fields") or {}
    correlation = float(raw.get("correlation", DEFAULT_CORRELATION))
    if not 0.0 <= correlation <= 1.0:
        raise ScenarioError(f"{origin}: correlation must be in [0, 1], got {correlation}")
    return Scenario(
        items=items,
        labels=labels,
        confusable=confusable,
        behaviours=_behaviours(raw.get("models") or {}, origin),
        difficulty=difficulty,
        ticket_pattern=re.compile(
            str(raw.get("ticket_pattern", DEFAULT_TICKET_PATTERN)), re.DOTALL
        ),
        fields=FieldNames(
            label=str(fields.get("label", "label")),
            confidence=str(fields.get("confidence", "confidence")),
            reason=str(fields.get("reason", "reason")),
        ),
        correlation=correlation,
        name=str(raw.get("name", origin)),
    )


def _items(raw: Any, origin: str) -> tuple[dict[str, str], dict[str, float]]:
    items: dict[str, str] = {}
    difficulty: dict[str, float] = {}
    rows = raw.items() if isinstance(raw, Mapping) else raw
    for row in rows:
        if isinstance(row, tuple):
            text, label, level = row[0], row[1], None
        elif isinstance(row, Mapping) and "text" in row and "label" in row:
            text, label, level = row["text"], row["label"], row.get("difficulty")
        else:
            raise ScenarioError(f"{origin}: each item needs 'text' and 'label', got {row!r}")
        key = normalize(str(text))
        # A text listed twice keeps its first label, as a dataset's first occurrence wins.
        items.setdefault(key, str(label))
        if level is not None:
            difficulty.setdefault(key, float(level))
    return items, difficulty


def _behaviours(raw: Mapping[str, Any], origin: str) -> dict[str, ModelBehaviour]:
    behaviours = dict(DEFAULT_BEHAVIOURS)
    for name, spec in raw.items():
        if not isinstance(spec, Mapping) or "accuracy" not in spec:
            raise ScenarioError(f"{origin}: model {name!r} needs an 'accuracy'")
        accuracy = float(spec["accuracy"])
        if not 0.0 <= accuracy <= 1.0:
            raise ScenarioError(f"{origin}: model {name!r} accuracy must be in [0, 1]")
        base = behaviours.get(str(name), DEFAULT_BEHAVIOURS["default"])
        behaviours[str(name)] = ModelBehaviour(
            accuracy=accuracy,
            confidence_right=_shape(spec.get("confidence_right"), base.confidence_right),
            confidence_wrong=_shape(spec.get("confidence_wrong"), base.confidence_wrong),
        )
    return behaviours


def _shape(value: Any, fallback: tuple[float, float]) -> tuple[float, float]:
    if value is None:
        return fallback
    a, b = (float(part) for part in value)
    if a <= 0 or b <= 0:
        raise ScenarioError(f"a Beta shape needs two positive numbers, got {value!r}")
    return (a, b)
