"""A route: a small YAML file naming the task, the labels, the ladder and the error budget.

    name: banking77
    task: classify
    description: Online-banking customer messages, one queue per intent.
    labels: labels.yaml          # a file, or an inline list of names or {name, description}
    tiers: [local, claude-haiku-4-5, claude-sonnet-4-6]
    error_budget: 0.01           # at most 1% of accepted answers wrong
    confidence: 0.95             # the guarantee holds with this probability (1 - delta)
    when_unsure: flag            # the top tier is unsure: return its answer flagged, or `human`
    thresholds: joint            # one certified threshold for the whole ladder, or `per_tier`
    out_of_scope_label: out_of_scope   # optional: "fits nothing"; eval reports it apart
    data:
      train: data/train.csv      # JSONL or CSV (text,label or text,category)
      test: data/test.csv
      calibration_share: 0.2     # held out from train to fit calibrators and thresholds, or
      # calibration: data/cal.csv  # a file of its own (never the test data)
    few_shot: 8                  # nearest labelled examples shown to the Claude tiers
    artifacts: artifacts         # where `tiergate train` and `calibrate` write

Relative paths are relative to the route file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from tiergate.classifier.settings import LocalSettings, LocalSettingsError
from tiergate.errors import TiergateError
from tiergate.tiers.prompt import Label

LOCAL = "local"
WhenUnsure = Literal["flag", "human"]
ThresholdMode = Literal["joint", "per_tier"]


class RouteError(TiergateError, ValueError):
    """A route file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Route:
    path: Path
    name: str
    task: str
    description: str
    labels: tuple[Label, ...]
    tiers: tuple[str, ...]
    error_budget: float
    confidence: float
    when_unsure: WhenUnsure
    thresholds: ThresholdMode
    out_of_scope_label: str | None
    train_data: Path | None
    test_data: Path | None
    calibration_data: Path | None
    calibration_share: float
    few_shot: int
    artifacts: Path
    encoder: str | None
    seed: int
    local: LocalSettings = field(default_factory=LocalSettings)  # the ``local:`` block

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def claude_tiers(self) -> tuple[str, ...]:
        return tuple(tier for tier in self.tiers if tier != LOCAL)

    @property
    def delta(self) -> float:
        return 1.0 - self.confidence

    def restricted(self, tiers: list[str]) -> Route:
        """The same route with a shorter ladder (``--tiers``), in the route's order."""
        unknown = [tier for tier in tiers if tier not in self.tiers]
        if unknown:
            raise RouteError(f"{self.path}: tiers not in this route's ladder: {', '.join(unknown)}")
        return replace(self, tiers=tuple(tier for tier in self.tiers if tier in tiers))


def _labels(raw: Any, base: Path, path: Path) -> tuple[Label, ...]:
    if isinstance(raw, str):
        file = base / raw
        try:
            raw = yaml.safe_load(file.read_text("utf-8"))
        except OSError as error:
            raise RouteError(f"{path}: cannot read labels file {file}: {error.strerror}") from None
        if isinstance(raw, dict):
            raw = raw.get("labels", raw)
    labels: list[Label] = []
    if isinstance(raw, dict):
        raw = [{"name": name, "description": text or ""} for name, text in raw.items()]
    if not isinstance(raw, list) or not raw:
        raise RouteError(f"{path}: labels must be a non-empty list, a mapping, or a file of either")
    for item in raw:
        if isinstance(item, str):
            labels.append(Label(item))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            labels.append(Label(item["name"], str(item.get("description") or "")))
        else:
            raise RouteError(f"{path}: a label must be a name or {{name, description}}: {item!r}")
    names = [label.name for label in labels]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RouteError(f"{path}: duplicate labels: {', '.join(duplicates)}")
    return tuple(labels)


def load_route(path: str | Path) -> Route:
    path = Path(path)
    if path.is_dir():
        path = path / "route.yaml"
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
    except OSError as error:
        raise RouteError(f"cannot read route {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise RouteError(f"route {path} is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise RouteError(f"route {path} must be a mapping")
    base = path.parent

    def number(key: str, default: float, low: float, high: float) -> float:
        value = raw.get(key, default)
        if not isinstance(value, int | float) or not low < float(value) < high:
            raise RouteError(
                f"{path}: {key} must be a number between {low} and {high}, got {value!r}"
            )
        return float(value)

    task = raw.get("task", "classify")
    if task != "classify":
        raise RouteError(f"{path}: task {task!r} is not supported (only classify)")
    tiers = raw.get("tiers")
    if not isinstance(tiers, list) or not tiers or not all(isinstance(t, str) for t in tiers):
        raise RouteError(f"{path}: tiers must be a non-empty list of tier names")
    if LOCAL in tiers and tiers.index(LOCAL) != 0:
        raise RouteError(f"{path}: the local tier must come first in the ladder")
    when_unsure = raw.get("when_unsure", "flag")
    if when_unsure not in ("flag", "human"):
        raise RouteError(f"{path}: when_unsure must be flag or human, got {when_unsure!r}")
    thresholds = raw.get("thresholds", "joint")
    if thresholds not in ("joint", "per_tier"):
        raise RouteError(f"{path}: thresholds must be joint or per_tier, got {thresholds!r}")
    labels = _labels(raw.get("labels"), base, path)
    out_of_scope = raw.get("out_of_scope_label")
    if out_of_scope is not None and out_of_scope not in {label.name for label in labels}:
        raise RouteError(f"{path}: out_of_scope_label {out_of_scope!r} is not one of the labels")
    data = raw.get("data") or {}
    if not isinstance(data, dict):
        raise RouteError(f"{path}: data must be a mapping with train, test and calibration files")
    share = data.get("calibration_share", 0.2)
    if not isinstance(share, int | float) or not 0.0 < float(share) < 1.0:
        raise RouteError(f"{path}: data.calibration_share must be between 0 and 1, got {share!r}")
    few_shot = raw.get("few_shot", 8)
    if not isinstance(few_shot, int) or few_shot < 0:
        raise RouteError(f"{path}: few_shot must be a whole number >= 0")
    local = raw.get("local") or {}
    try:
        local_settings = LocalSettings.from_mapping(raw.get("local"))
    except LocalSettingsError as error:
        raise RouteError(f"{path}: {error}") from None
    return Route(
        path=path,
        name=str(raw.get("name") or path.parent.name),
        task=task,
        description=str(raw.get("description") or ""),
        labels=labels,
        tiers=tuple(tiers),
        error_budget=number("error_budget", 0.01, 0.0, 1.0),
        confidence=number("confidence", 0.95, 0.0, 1.0),
        when_unsure=when_unsure,
        thresholds=thresholds,
        out_of_scope_label=out_of_scope,
        train_data=base / data["train"] if data.get("train") else None,
        test_data=base / data["test"] if data.get("test") else None,
        calibration_data=base / data["calibration"] if data.get("calibration") else None,
        calibration_share=float(share),
        few_shot=few_shot,
        artifacts=base / str(raw.get("artifacts", "artifacts")),
        encoder=local.get("encoder"),
        seed=int(raw.get("seed", 0)),
        local=local_settings,
    )
