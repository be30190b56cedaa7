"""Building a scenario file from a labelled dataset (CSV with a text and a label column)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import yaml

from tiergate.emulator.scenario import (
    DEFAULT_BEHAVIOURS,
    DEFAULT_CORRELATION,
    DEFAULT_TICKET_PATTERN,
    Scenario,
    ScenarioError,
    confusable_sets,
    normalize,
    scenario_from_dict,
)


def build_scenario(
    csv_paths: Iterable[str | Path],
    *,
    text_column: str = "text",
    label_column: str = "category",
    name: str | None = None,
    accuracies: Mapping[str, float] | None = None,
    correlation: float = DEFAULT_CORRELATION,
) -> dict[str, Any]:
    """A scenario as a plain dict, ready for :func:`write_scenario` or ``scenario_from_dict``.

    ``accuracies`` maps a model id or family (``haiku``, ``sonnet``) to its assumed accuracy;
    families left out keep the built-in assumptions.
    """
    paths = [Path(path) for path in csv_paths]
    rows = (row for path in paths for row in _rows(path, text_column, label_column))
    return scenario_dict(
        rows,
        name=name or "+".join(path.stem for path in paths),
        accuracies=accuracies,
        correlation=correlation,
        origin=", ".join(map(str, paths)),
    )


def scenario_from_examples(examples: Iterable[Any], *, name: str = "examples") -> Scenario:
    """A scenario for labelled examples (anything with ``text`` and ``label``)."""
    return scenario_from_dict(
        scenario_dict(((e.text, e.label) for e in examples), name=name, origin=name), name
    )


def scenario_dict(
    rows: Iterable[tuple[str, str]],
    *,
    name: str,
    accuracies: Mapping[str, float] | None = None,
    correlation: float = DEFAULT_CORRELATION,
    origin: str = "rows",
) -> dict[str, Any]:
    """The scenario dict for (text, label) rows; the first label seen for a text wins."""
    items: list[dict[str, str]] = []
    seen: set[str] = set()
    for text, label in rows:
        key = normalize(text)
        if key and label and key not in seen:
            seen.add(key)
            items.append({"text": text, "label": label})
    if not items:
        raise ScenarioError(f"no labelled rows found in {origin}")
    labels = sorted({item["label"] for item in items})
    models: dict[str, dict[str, Any]] = {
        family: {
            "accuracy": behaviour.accuracy,
            "confidence_right": list(behaviour.confidence_right),
            "confidence_wrong": list(behaviour.confidence_wrong),
        }
        for family, behaviour in DEFAULT_BEHAVIOURS.items()
    }
    for model, accuracy in (accuracies or {}).items():
        models.setdefault(model, dict(models["default"]))["accuracy"] = accuracy
    return {
        "version": 1,
        "name": name,
        "note": "Accuracies are assumptions for offline runs, not measurements of Claude.",
        "ticket_pattern": DEFAULT_TICKET_PATTERN,
        "fields": {"label": "label", "confidence": "confidence", "reason": "reason"},
        "correlation": correlation,
        "models": models,
        "labels": labels,
        "confusable": confusable_sets(labels),
        "items": items,
    }


def write_scenario(scenario: Mapping[str, Any], path: str | Path) -> Path:
    """Write JSON, or YAML when the name ends in ``.yaml``/``.yml``."""
    target = Path(path)
    if target.suffix.lower() in (".yaml", ".yml"):
        target.write_text(yaml.safe_dump(dict(scenario), sort_keys=False, allow_unicode=True))
    else:
        target.write_bytes(orjson.dumps(scenario, option=orjson.OPT_INDENT_2))
    return target


def _rows(path: Path, text_column: str, label_column: str) -> Iterable[tuple[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {text_column, label_column} - set(reader.fieldnames or ())
            if missing:
                raise ScenarioError(f"{path}: missing column(s) {sorted(missing)}")
            for row in reader:
                text, label = row[text_column], row[label_column]
                if text and label:
                    yield text, label
    except OSError as error:
        raise ScenarioError(f"cannot read {path}: {error.strerror}") from None
