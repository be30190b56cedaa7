"""Assembles a working router from a route file: data, local model, Claude tiers, policies.

Artifacts of a route live in its ``artifacts`` folder:

- ``local/``: the trained local model (see ``tiergate.classifier``);
- ``calibration.json``: per tier, the calibrator and thresholds fitted by ``tiergate calibrate``,
  with the route settings they were fitted for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiergate.core.prices import PriceBook
from tiergate.datasets import Example, load_dataset, stratified_split
from tiergate.errors import TiergateError
from tiergate.routing.engine import LocalViewer, Router
from tiergate.routing.fitting import OwnRows
from tiergate.routing.policy import TierPolicy
from tiergate.routing.route import LOCAL, Route
from tiergate.tiers.base import LocalView, Tier, TierAnswer
from tiergate.tiers.factory import build_tiers
from tiergate.transports.base import Transport

LOCAL_DIR = "local"
POLICY_FILE = "calibration.json"
RUNS_FILE = "calibration_runs.json"  # every tier's answers on the calibration tickets
POLICY_FORMAT = 1
RUNS_FORMAT = 2
# A few texts recur across BANKING77's splits; more shared texts than this mean the local model
# was trained on the calibration data (a changed seed or data file since `tiergate train`).
MAX_SHARED_TEXTS = 0.01


class RuntimeSetupError(TiergateError, RuntimeError):
    """Something a route needs is missing (data, a trained model, calibration, a key)."""


@dataclass(frozen=True)
class RouteData:
    train: list[Example]
    calibration: list[Example]


def read_examples(route: Route, path: Path, *, require_labels: bool = True) -> list[Example]:
    """A data file read the way the route's task reads rows."""
    return load_dataset(path, require_labels=require_labels, reader=route.task.example)


def route_data(route: Route) -> RouteData:
    """Training and calibration examples: a calibration file, or a share held out from train."""
    if route.train_data is None:
        raise RuntimeSetupError(f"{route.path}: data.train is not set")
    train = read_examples(route, route.train_data)
    if route.calibration_data is not None:
        return RouteData(train, read_examples(route, route.calibration_data))
    if route.calibration_share == 0.0:  # a local-only route certifies on out-of-fold rows
        return RouteData(train, [])
    split = stratified_split(
        train, calibration=route.calibration_share, seed=route.seed, stratum=route.task.stratum
    )
    return RouteData(split.train, split.calibration)


def labelled_examples(
    route: Route, path: Path | None, limit: int | None = None
) -> tuple[Path, list[Example]]:
    """Labelled tickets to score or replay: ``path``, else the route's test data."""
    chosen = path or route.test_data
    if chosen is None:
        raise RuntimeSetupError(f"{route.path} has no data.test: pass --data FILE")
    examples = read_examples(route, chosen)
    check_labels(route, examples, str(chosen))
    return chosen, examples[:limit] if limit is not None else examples


def check_labels(route: Route, examples: Sequence[Example], source: str) -> None:
    """Refuse gold answers the route's task cannot take (a label outside the set, say)."""
    route.task.check_gold(examples, source)


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


class BatchedViewer:
    """The local model for a serving process: views asked for by concurrent requests are
    computed together, one whole prediction (encoder, linear model, neighbours) per batch, on
    one worker thread with one BLAS thread (the event loop keeps the other core)."""

    def __init__(self, viewer: LocalModelViewer, *, max_batch: int = 64, max_wait: float = 0.002):
        from tiergate.batching import Batched

        self.viewer = viewer
        self.model = viewer.model
        # Found once: scanning the loaded BLAS libraries per batch costs ~90 us, the limit ~7.
        self._threads = _thread_controller()
        self._batched: Batched[list[LocalView]] = Batched(
            self._predict, max_batch=max_batch, max_wait=max_wait, name="tiergate-local"
        )

    def _predict(self, texts: list[str]) -> list[LocalView]:
        if self._threads is None:
            return self.viewer.view(texts)
        with self._threads.limit(limits=1):
            return self.viewer.view(texts)

    def view(self, texts: Sequence[str]) -> list[LocalView]:
        return self._batched.call(texts) if texts else []

    async def view_async(self, texts: Sequence[str]) -> list[LocalView]:
        return await self._batched.call_async(texts) if texts else []

    def close(self) -> None:
        self._batched.close()


def _thread_controller() -> Any:
    """threadpoolctl's controller of numpy's BLAS threads; None without threadpoolctl (then
    numpy keeps its default threads)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def own_rows(
    local: LocalModelViewer, like: Sequence[str] | None = None, *, seed: int = 0
) -> OwnRows:
    """The local model's out-of-fold predictions on its gold training examples.

    ``like``: the held-out tickets' gold labels. The rows are then subsampled so their label
    mix is the held-out one (see :func:`label_matched`): a training set is often balanced
    where traffic is not (CLINC150 trains on 0.7% out-of-scope messages and calibrates on
    3.2%), and rows of the wrong mix would misstate the local tier's error.
    """
    from tiergate.datasets import GOLD

    model = local.model
    crossed = model.cross_fit()
    keep = np.array([example.provenance == GOLD for example in model.examples], dtype=bool)
    rows = np.flatnonzero(keep)
    if like:
        gold = [crossed.gold[i] for i in rows.tolist()]
        rows = rows[label_matched(gold, like, seed)]
    return OwnRows(
        [crossed.labels[i] for i in rows.tolist()],
        np.asarray(crossed.correct, dtype=bool)[rows],
        {
            name: np.asarray(column, dtype=np.float64)[rows]
            for name, column in crossed.features.items()
        },
    )


def label_matched(gold: Sequence[str], target: Sequence[str], seed: int) -> NDArray[np.intp]:
    """The largest subsample of ``gold`` (row indices, in order) whose label shares are
    ``target``'s, each label's share smoothed by one pseudo-row so a label the target lacks
    keeps a little weight. Deterministic for a seed."""
    from collections import Counter

    own = Counter(gold)
    wanted = Counter(target)
    labels = sorted(set(own) | set(wanted))
    total = len(target) + len(labels)
    share = {label: (wanted[label] + 1) / total for label in labels}
    scale = min(own[label] / share[label] for label in own)
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(gold):
        by_label.setdefault(label, []).append(index)
    kept: list[int] = []
    for label, indices in sorted(by_label.items()):
        count = min(len(indices), int(np.floor(scale * share[label] + 1e-9)))
        kept += rng.choice(indices, size=count, replace=False).tolist()
    return np.array(sorted(kept), dtype=np.intp)


def check_held_out(route: Route, local: LocalModelViewer, examples: Sequence[Example]) -> None:
    """Refuse calibration data the local model was trained on: its scores would flatter it."""
    if not examples:
        return
    trained = {example.text for example in local.model.examples}
    shared = sum(1 for example in examples if example.text in trained)
    if shared > MAX_SHARED_TEXTS * len(examples):
        raise RuntimeSetupError(
            f"{shared:,} of {len(examples):,} calibration texts are in the local model's training "
            f"data (the route's seed or data changed since it was trained): run "
            f"`tiergate train {route.path}` again"
        )


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


def check_tiers(route: Route, book: PriceBook) -> None:
    """Every paid tier of the ladder is a model of the price book (else the route file's
    ``tiers`` entry is named, with the closest known models)."""
    for index, tier in enumerate(route.tiers):
        if tier != LOCAL and tier not in book:
            hint = " or ".join(book.suggest(tier))
            raise RuntimeSetupError(
                f"{route.path}: tiers[{index}]: {tier!r} is neither `local` nor a model of the "
                "price book" + (f"; did you mean {hint}?" if hint else " (add it with --prices)")
            )


def paid_tiers(
    route: Route,
    book: PriceBook,
    transport: Transport,
    local: LocalViewer | None = None,
    pool: Sequence[Example] | None = None,
) -> dict[str, Tier]:
    """The route's paid tiers, built by their providers (``tiers/factory.py``), with the task
    prepared on the labelled pool (the local model's examples, else the training data)."""
    check_tiers(route, book)
    if pool is None:
        pool = (
            local.model.examples
            if isinstance(local, LocalModelViewer | BatchedViewer)
            else (route_data(route).train if route.train_data else [])
        )
    task = route.task.prepared(pool)
    return dict(build_tiers(route.claude_tiers, book, task, transport))


def save_policies(
    route: Route,
    policies: Mapping[str, TierPolicy],
    extra: Mapping[str, Any],
    *,
    budget_from_route: bool = True,
    mean_cost_usd: Mapping[str, float] | None = None,
) -> Path:
    """Write calibration.json atomically. ``budget_from_route=False``: the budget was given on
    the command line (``calibrate --budget``) and holds until the next calibration.
    ``mean_cost_usd``: each paid tier's mean cost per call on the calibration tickets."""
    route.artifacts.mkdir(parents=True, exist_ok=True)
    path = route.artifacts / POLICY_FILE
    body = {
        "format": POLICY_FORMAT,
        "route": route.name,
        "error_budget": route.error_budget,
        "budget_from": "route" if budget_from_route else "option",
        "confidence": route.confidence,
        "tiers": {name: policy.to_dict() for name, policy in policies.items()},
        "mean_cost_per_call_usd": dict(mean_cost_usd or {}),
        **extra,
    }
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(body, indent=1))
    temporary.replace(path)  # never a half-written calibration file
    return path


@dataclass(frozen=True)
class Calibration:
    """What ``calibrate_route`` saved: the policies, the budget they were fitted for, and each
    paid tier's mean cost per call on the calibration tickets (the strong-only baseline for
    items that never reach the strong tier)."""

    policies: dict[str, TierPolicy]
    error_budget: float
    mean_cost_usd: dict[str, float] = field(default_factory=dict)
    # Each tier's accuracy on the calibration tickets with every answer accepted (against the
    # labels it was calibrated on: gold, or the top tier's answers after a silver refit).
    accuracy_alone: dict[str, float] = field(default_factory=dict)

    def strong_mean_cost_usd(self, route: Route) -> float | None:
        claude = route.claude_tiers
        return self.mean_cost_usd.get(claude[-1]) if claude else None


def load_calibration(route: Route) -> Calibration:
    path = route.artifacts / POLICY_FILE
    if not path.exists():
        raise RuntimeSetupError(f"no calibration in {path}: run `tiergate calibrate {route.path}`")
    body = json.loads(path.read_text())
    if body.get("format") != POLICY_FORMAT:
        raise RuntimeSetupError(f"{path}: unknown calibration format {body.get('format')!r}")
    budget = float(body.get("error_budget"))
    if body.get("budget_from", "route") == "route" and budget != route.error_budget:
        raise RuntimeSetupError(
            f"{path} was fitted for an error budget of {budget}, the route now says "
            f"{route.error_budget}: run `tiergate calibrate {route.path}` again (it refits from "
            "the recorded answers, no new calls)"
        )
    policies = {name: TierPolicy.from_dict(data) for name, data in body["tiers"].items()}
    alone = body.get("every_answer_accepted") or {}
    accuracy = {
        str(tier): float(row["accuracy_if_everything_accepted"])
        for tier, row in alone.items()
        if row.get("accuracy_if_everything_accepted") is not None
    }
    return Calibration(policies, budget, _mean_costs(body), accuracy)


def _mean_costs(body: Mapping[str, Any]) -> dict[str, float]:
    """Per paid tier; files written before the field existed carry it in their report."""
    saved = body.get("mean_cost_per_call_usd")
    if isinstance(saved, dict):
        return {str(tier): float(cost) for tier, cost in saved.items()}
    rows = body.get("tiers_report") or []
    return {
        str(row["tier"]): float(row["mean_cost_per_call_usd"])
        for row in rows
        if row.get("tier") != LOCAL and row.get("mean_cost_per_call_usd") is not None
    }


def load_calibration_report(route: Route) -> dict[str, Any]:
    """Everything calibration.json holds beyond the policies (empty if there is none)."""
    path = route.artifacts / POLICY_FILE
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {key: value for key, value in body.items() if key != "tiers"}


def load_policies(route: Route) -> dict[str, TierPolicy]:
    return load_calibration(route).policies


def uses_local_model(route: Route) -> bool:
    """The local model answers (a local tier) or informs the paid tiers (few-shot neighbours)."""
    return LOCAL in route.tiers or (route.few_shot > 0 and (route.artifacts / LOCAL_DIR).exists())


def open_router(
    route: Route,
    book: PriceBook,
    transport: Transport | None,
    *,
    concurrency: int = 32,
    batched: bool = False,
) -> Router:
    """The route's engine. ``batched``: concurrent requests share local-model predictions (a
    serving process, :class:`BatchedViewer`)."""
    local: LocalModelViewer | BatchedViewer | None = (
        load_local(route) if uses_local_model(route) else None
    )
    tiers: dict[str, Tier] = {}
    if route.claude_tiers:
        if transport is None:
            raise RuntimeSetupError("the route's ladder has paid tiers but no transport was given")
        tiers = paid_tiers(route, book, transport, local)
    if batched and isinstance(local, LocalModelViewer):
        local = BatchedViewer(local)
    calibration = load_calibration(route)
    # A budget given to `calibrate --budget` holds until the next calibration.
    route = replace(route, error_budget=calibration.error_budget)
    return Router(route, tiers, calibration.policies, local, concurrency=concurrency)


def answer_row(answer: TierAnswer) -> dict[str, Any]:
    """What a tier answered, as recorded for a refit (calibration runs, audit records)."""
    return {
        "payload": answer.payload,
        "features": answer.features,
        "cost_usd": answer.cost_usd,
        "problem": answer.problem,
        "stated_confidence": answer.stated_confidence,
        "model": answer.model,
    }


def answer_from_row(tier: str, row: Mapping[str, Any]) -> TierAnswer:
    return TierAnswer(
        tier,
        row["payload"] if "payload" in row else row["label"],
        row["features"],
        cost_usd=row["cost_usd"],
        problem=row["problem"],
        stated_confidence=row["stated_confidence"],
        model=row.get("model") or tier,
    )


def save_runs(
    route: Route,
    examples: Sequence[Example],
    runs: Mapping[str, Sequence[TierAnswer]],
    own: OwnRows | None = None,
    *,
    model_hash: str | None = None,
) -> Path:
    """Keep what each tier answered at calibration (and the local tier's out-of-fold rows), so
    thresholds can be refitted for free."""
    body: dict[str, Any] = {
        "format": RUNS_FORMAT,
        "local_model": model_hash,  # the local model these answers saw (features depend on it)
        "examples": [
            {"text": e.text, "label": e.label, "id": e.id, "request": e.request} for e in examples
        ],
        "runs": {tier: [answer_row(a) for a in answers] for tier, answers in runs.items()},
    }
    if own is not None:
        body["local_own"] = {
            "labels": own.labels,
            "correct": own.correct.tolist(),
            "features": {name: column.tolist() for name, column in own.features.items()},
        }
    route.artifacts.mkdir(parents=True, exist_ok=True)
    path = route.artifacts / RUNS_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(body))
    temporary.replace(path)
    return path


@dataclass(frozen=True)
class RecordedRuns:
    examples: list[Example]
    runs: dict[str, list[TierAnswer]]
    own: OwnRows | None
    model_hash: str | None = None


def load_runs(route: Route) -> RecordedRuns:
    path = route.artifacts / RUNS_FILE
    if not path.exists():
        raise RuntimeSetupError(f"no recorded calibration in {path}: run `tiergate calibrate`")
    body = json.loads(path.read_text())
    if body.get("format") not in (POLICY_FORMAT, RUNS_FORMAT):
        raise RuntimeSetupError(f"{path}: unknown format {body.get('format')!r}")
    examples = [
        Example(row["text"], row["label"], id=row.get("id"), request=row.get("request"))
        for row in body["examples"]
    ]
    runs = {
        tier: [answer_from_row(tier, row) for row in rows] for tier, rows in body["runs"].items()
    }
    own = None
    if body.get("local_own"):
        raw = body["local_own"]
        own = OwnRows(
            list(raw["labels"]),
            np.array(raw["correct"], dtype=bool),
            {name: np.array(column, dtype=np.float64) for name, column in raw["features"].items()},
        )
    return RecordedRuns(examples, runs, own, body.get("local_model"))
