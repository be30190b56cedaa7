"""A route: a small YAML file naming the task, the ladder and the error budget.

    name: banking77
    task: classify                 # a kind from tiergate.tasks.TASKS
    description: Online-banking customer messages, one queue per intent.
    tiers: [local, claude-haiku-4-5, claude-sonnet-4-6]
    error_budget: 0.01             # at most 1% of accepted answers wrong
    confidence: 0.95               # the guarantee holds with this probability (1 - delta)
    when_unsure: flag              # the top tier is unsure: return its answer flagged, or `human`
    thresholds: joint              # one certified ladder, or `per_tier`
    unaccepted_cost_usd: 0.05      # optional: what a ticket no tier accepts costs you
    data:
      train: data/train.csv        # JSONL, CSV, or TXT with a .labels file beside it
      test: data/test.csv
      calibration_share: 0.2       # held out from train to fit calibrators and thresholds
                                   # (default 0.2; 0 for a `tiers: [local]` route), or
      # calibration: data/cal.csv  # a file of its own (never the test data)
    few_shot: 8                    # nearest labelled examples shown to the Claude tiers
    artifacts: artifacts           # where `tiergate train` and `calibrate` write
    local: {encoder: all-MiniLM-L6-v2}
    # ... and the task's own settings (classify: labels, out_of_scope_label; see tasks/)

Relative paths are relative to the route file. The file is validated on load: a mistake gives
one message naming the file, the field and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tiergate.classifier.settings import LocalSettings, LocalSettingsError
from tiergate.errors import TiergateError
from tiergate.tasks.base import Task
from tiergate.validation import did_you_mean, read_yaml, validated

LOCAL = "local"
# Held out from the training data for the paid tiers' calibration, unless the route says.
DEFAULT_CALIBRATION_SHARE = 0.2
WhenUnsure = Literal["flag", "human"]
ThresholdMode = Literal["joint", "per_tier"]


class RouteError(TiergateError, ValueError):
    """A route file that cannot be used; the message names the file and the field."""


class DataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train: str | None = None
    test: str | None = None
    calibration: str | None = None
    # None: DEFAULT_CALIBRATION_SHARE, or 0 for a route whose only tier is the local one.
    calibration_share: float | None = Field(default=None, ge=0.0, lt=1.0)


class RouteSettings(BaseModel):
    """The settings every route has; a task adds its own (``Task.settings``)."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    task: str = "classify"
    description: str = ""
    tiers: list[str] = Field(min_length=1)
    error_budget: float = Field(default=0.01, gt=0.0, lt=1.0)
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    when_unsure: WhenUnsure = "flag"
    thresholds: ThresholdMode = "joint"
    unaccepted_cost_usd: float | None = Field(default=None, ge=0.0)
    data: DataSettings = Field(default_factory=lambda: DataSettings())
    few_shot: int = Field(default=8, ge=0)
    artifacts: str = "artifacts"
    seed: int = 0
    local: dict[str, Any] | None = None  # checked by classifier.settings.LocalSettings

    @field_validator("tiers")
    @classmethod
    def _local_first(cls, tiers: list[str]) -> list[str]:
        if LOCAL in tiers and tiers.index(LOCAL) != 0:
            raise ValueError("the local tier must come first in the ladder")
        if len(set(tiers)) != len(tiers):
            raise ValueError("a tier appears twice in the ladder")
        return tiers


@dataclass(frozen=True)
class Route:
    path: Path
    name: str
    task: Task
    description: str
    tiers: tuple[str, ...]
    error_budget: float
    confidence: float
    when_unsure: WhenUnsure
    thresholds: ThresholdMode
    train_data: Path | None
    test_data: Path | None
    calibration_data: Path | None
    calibration_share: float
    few_shot: int
    artifacts: Path
    seed: int
    local: LocalSettings = field(default_factory=LocalSettings)  # the ``local:`` block
    # What a ticket no tier accepts costs (a person's look, a wrong answer's risk), for choosing
    # among certified ladders; None: ten calls of the top tier (routing/fitting.py).
    unaccepted_cost_usd: float | None = None

    @property
    def claude_tiers(self) -> tuple[str, ...]:
        """The paid tiers (any provider's model from the price book), in ladder order."""
        return tuple(tier for tier in self.tiers if tier != LOCAL)

    @property
    def encoder(self) -> str:
        return self.local.encoder

    @property
    def delta(self) -> float:
        return 1.0 - self.confidence

    def restricted(self, tiers: list[str]) -> Route:
        """The same route with a shorter ladder (``--tiers``), in the route's order."""
        unknown = [tier for tier in tiers if tier not in self.tiers]
        if unknown:
            raise RouteError(f"{self.path}: tiers not in this route's ladder: {', '.join(unknown)}")
        return replace(self, tiers=tuple(tier for tier in self.tiers if tier in tiers))


def load_route(path: str | Path) -> Route:
    path = Path(path)
    if path.is_dir():
        path = path / "route.yaml"
    return route_from_mapping(read_yaml(path, RouteError, "route"), path)


def _with_suggestion(message: str, path: Path, own: Mapping[str, Any], common: set[str]) -> str:
    """A key the task refused as unknown may be a misspelt common setting (``error_budjet``):
    say which. The task names only its own fields."""
    for key in own:
        unknown = f"{path}: {key}: unknown field"
        hint = did_you_mean(str(key), common)
        if message.startswith(unknown) and hint and "did you mean" not in message:
            return f"{unknown}{hint}"
    return message


def route_from_mapping(raw: Mapping[str, Any], path: Path) -> Route:
    from tiergate.tasks import TASKS, task_class

    settings = validated(RouteSettings, raw, path, RouteError)
    if settings.task not in TASKS:
        raise RouteError(
            f"{path}: task: {settings.task!r} is not a kind of task tiergate knows "
            f"({', '.join(sorted(TASKS))})"
        )
    common = set(RouteSettings.model_fields)
    own = {key: value for key, value in raw.items() if key not in common}
    try:
        task = task_class(settings.task).from_route(
            own, path, description=settings.description, few_shot=settings.few_shot
        )
    except RouteError as error:
        raise RouteError(_with_suggestion(str(error), path, own, common)) from None
    try:
        local = LocalSettings.from_mapping(settings.local)
    except LocalSettingsError as error:
        raise RouteError(f"{path}: {error}") from None
    base = path.parent
    data = settings.data
    return Route(
        path=path,
        name=settings.name or path.parent.name,
        task=task,
        description=settings.description,
        tiers=tuple(settings.tiers),
        error_budget=settings.error_budget,
        confidence=settings.confidence,
        when_unsure=settings.when_unsure,
        thresholds=settings.thresholds,
        train_data=base / data.train if data.train else None,
        test_data=base / data.test if data.test else None,
        calibration_data=base / data.calibration if data.calibration else None,
        calibration_share=_calibration_share(path, settings),
        few_shot=settings.few_shot,
        artifacts=base / settings.artifacts,
        seed=settings.seed,
        local=local,
        unaccepted_cost_usd=settings.unaccepted_cost_usd,
    )


def _calibration_share(path: Path, settings: RouteSettings) -> float:
    """What share of the training data is held out for calibration.

    A route whose only tier is the local one needs no hold-out: its tier is certified on
    out-of-fold scores over the whole training set (``LocalModel.cross_fit``), so by default it
    trains on everything. The paid tiers cost money per answer and are measured only on tickets
    held out from training, so a route with one needs a share (or a calibration file).
    """
    data = settings.data
    local_only = settings.tiers == [LOCAL]
    share = data.calibration_share
    if share is None:
        return 0.0 if local_only else DEFAULT_CALIBRATION_SHARE
    if share == 0.0 and not local_only and data.calibration is None:
        raise RouteError(
            f"{path}: data.calibration_share: 0 holds nothing out, but the paid tiers "
            f"({', '.join(t for t in settings.tiers if t != LOCAL)}) are calibrated on "
            "held-out tickets: give a share above 0 or a data.calibration file"
        )
    return share
