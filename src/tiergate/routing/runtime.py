"""Assembles a working router from a route file: data, local model, Claude tiers, policies.

Artifacts of a route live in its ``artifacts`` folder:

- ``local/``: the trained local model (see ``tiergate.classifier``);
- ``calibration.json``: per tier, the calibrator and thresholds fitted by ``tiergate calibrate``,
  with the route settings they were fitted for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic

from tiergate.core.prices import PriceBook
from tiergate.datasets import Example, load_dataset, stratified_split
from tiergate.errors import TiergateError
from tiergate.routing.engine import Router
from tiergate.routing.policy import TierPolicy
from tiergate.routing.route import LOCAL, Route
from tiergate.tiers.base import LocalView, Tier, TierAnswer
from tiergate.tiers.claude import ClaudeTier

LOCAL_DIR = "local"
POLICY_FILE = "calibration.json"
RUNS_FILE = "calibration_runs.json"  # every tier's answers on the calibration tickets
POLICY_FORMAT = 1


class RuntimeSetupError(TiergateError, RuntimeError):
    """Something a route needs is missing (data, a trained model, calibration, a key)."""


@dataclass(frozen=True)
class RouteData:
    train: list[Example]
    calibration: list[Example]


def route_data(route: Route) -> RouteData:
    """Training and calibration examples: a calibration file, or a share held out from train."""
    if route.train_data is None:
        raise RuntimeSetupError(f"{route.path}: data.train is not set")
    train = load_dataset(route.train_data)
    if route.calibration_data is not None:
        return RouteData(train, load_dataset(route.calibration_data))
    split = stratified_split(train, calibration=route.calibration_share, seed=route.seed)
    return RouteData(split.train, split.calibration)


def check_labels(route: Route, examples: Sequence[Example], source: str) -> None:
    known = set(route.label_names)
    unknown = sorted({example.label for example in examples} - known)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise RuntimeSetupError(f"{source}: labels not in the route's label set: {shown}")


class LocalModelViewer:
    """The local model as the engine sees it (one batch of texts at a time)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._labels: tuple[str, ...] = ()
        self._index: dict[str, int] = {}

    def view(self, texts: Sequence[str]) -> list[LocalView]:
        if self.model.labels != self._labels:  # retraining may add labels
            self._labels = tuple(self.model.labels)
            self._index = {label: i for i, label in enumerate(self._labels)}
        predictions = self.model.predict(list(texts))
        return [LocalView(prediction, self._index) for prediction in predictions]


def local_dir(route: Route) -> Path:
    return route.artifacts / LOCAL_DIR


def load_local(route: Route) -> LocalModelViewer:
    from tiergate.classifier import LocalModel

    directory = local_dir(route)
    if not directory.exists():
        raise RuntimeSetupError(
            f"no trained local model in {directory}: run `tiergate train {route.path}` first"
        )
    return LocalModelViewer(LocalModel.load(directory))


def static_examples(examples: Sequence[Example], per_label: int = 6) -> list[tuple[str, str]]:
    """Fixed labelled examples, round robin over labels: the cache-padding pool."""
    by_label: dict[str, list[str]] = {}
    for example in examples:
        bucket = by_label.setdefault(example.label, [])
        if len(bucket) < per_label:
            bucket.append(example.text)
    chosen: list[tuple[str, str]] = []
    for round_number in range(per_label):
        for label in sorted(by_label):
            texts = by_label[label]
            if round_number < len(texts):
                chosen.append((texts[round_number], label))
    return chosen


def claude_tiers(
    route: Route,
    book: PriceBook,
    client: anthropic.AsyncAnthropic,
    pool: Sequence[Example],
) -> dict[str, Tier]:
    padding = static_examples(pool)
    return {
        name: ClaudeTier(
            book.get(name),
            route.labels,
            client,
            task_description=route.description,
            static_examples=padding,
            few_shot=route.few_shot,
        )
        for name in route.claude_tiers
    }


def save_policies(
    route: Route, policies: Mapping[str, TierPolicy], extra: Mapping[str, Any]
) -> Path:
    route.artifacts.mkdir(parents=True, exist_ok=True)
    path = route.artifacts / POLICY_FILE
    body = {
        "format": POLICY_FORMAT,
        "route": route.name,
        "error_budget": route.error_budget,
        "confidence": route.confidence,
        "tiers": {name: policy.to_dict() for name, policy in policies.items()},
        **extra,
    }
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(body, indent=1))
    temporary.replace(path)  # never a half-written calibration file
    return path


def load_policies(route: Route) -> dict[str, TierPolicy]:
    path = route.artifacts / POLICY_FILE
    if not path.exists():
        raise RuntimeSetupError(f"no calibration in {path}: run `tiergate calibrate {route.path}`")
    body = json.loads(path.read_text())
    if body.get("format") != POLICY_FORMAT:
        raise RuntimeSetupError(f"{path}: unknown calibration format {body.get('format')!r}")
    if body.get("error_budget") != route.error_budget:
        raise RuntimeSetupError(
            f"{path} was fitted for an error budget of {body.get('error_budget')}, the route now "
            f"says {route.error_budget}: run `tiergate calibrate {route.path}` again"
        )
    return {name: TierPolicy.from_dict(data) for name, data in body["tiers"].items()}


def open_router(
    route: Route,
    book: PriceBook,
    client: anthropic.AsyncAnthropic | None,
    *,
    concurrency: int = 32,
) -> Router:
    local = load_local(route) if LOCAL in route.tiers or route.few_shot else None
    tiers: dict[str, Tier] = {}
    if route.claude_tiers:
        if client is None:
            raise RuntimeSetupError("the route's ladder has Claude tiers but no client was given")
        pool = local.model.examples if local is not None else route_data(route).train
        tiers = claude_tiers(route, book, client, pool)
    return Router(route, tiers, load_policies(route), local, concurrency=concurrency)


def save_runs(
    route: Route, examples: Sequence[Example], runs: Mapping[str, Sequence[TierAnswer]]
) -> Path:
    """Keep what each tier answered at calibration, so thresholds can be refitted for free."""
    body = {
        "format": POLICY_FORMAT,
        "examples": [{"text": e.text, "label": e.label} for e in examples],
        "runs": {
            tier: [
                {
                    "label": a.label,
                    "features": a.features,
                    "cost_usd": a.cost_usd,
                    "problem": a.problem,
                    "stated_confidence": a.stated_confidence,
                }
                for a in answers
            ]
            for tier, answers in runs.items()
        },
    }
    path = route.artifacts / RUNS_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(body))
    temporary.replace(path)
    return path


def load_runs(route: Route) -> tuple[list[Example], dict[str, list[TierAnswer]]]:
    path = route.artifacts / RUNS_FILE
    if not path.exists():
        raise RuntimeSetupError(f"no recorded calibration in {path}: run `tiergate calibrate`")
    body = json.loads(path.read_text())
    examples = [Example(row["text"], row["label"]) for row in body["examples"]]
    runs = {
        tier: [
            TierAnswer(
                tier,
                row["label"],
                row["features"],
                cost_usd=row["cost_usd"],
                problem=row["problem"],
                stated_confidence=row["stated_confidence"],
                model=tier,
            )
            for row in rows
        ]
        for tier, rows in body["runs"].items()
    }
    return examples, runs
