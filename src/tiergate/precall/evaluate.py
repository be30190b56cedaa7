"""Report a trained router on prompts it never saw, the way RouteLLM reports routers.

Every figure is against strong-only on the same prompts: ``saving`` is one minus the policy's
total cost over strong-only's, ``quality_vs_strong`` the policy's total correctness over
strong-only's, ``to_strong`` the share of prompts the strong model answered (sent straight or
escalated). Beside each fitted variant: the plain agreement cascade with the same second model
(no threshold, escalate on every disagreement), and random routing that sends the same share
of prompts to the strong model (its expected figures, not one draw). The report also gives the
share random routing would need to reach the quality target on these prompts, and its saving
there, RouteLLM's usual baseline (read off the test outcomes, so a yardstick, not a policy that
could be deployed). Thresholds come from the
artifact, fixed on the training records; nothing here looks at the test outcomes before
applying them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tiergate.precall.policy import BoolArray, FloatArray, Outcomes, Served, Variant
from tiergate.precall.records import Record, check_models
from tiergate.precall.router import LearnedRouter
from tiergate.precall.threshold import Certificate

STRONG_ONLY = "strong-only"
CHEAP_ONLY = "cheap-only"
CASCADE = "cascade"


@dataclass(frozen=True, slots=True)
class Figures:
    saving: float
    quality_vs_strong: float
    accuracy: float
    to_strong: float
    cheap_calls: float

    def json(self) -> dict[str, float]:
        return {
            "saving": self.saving,
            "quality_vs_strong": self.quality_vs_strong,
            "accuracy": self.accuracy,
            "to_strong": self.to_strong,
            "cheap_calls_per_prompt": self.cheap_calls,
        }


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report: a policy and its figures on the test prompts."""

    key: str
    label: str
    figures: Figures
    second: str | None = None
    certified: bool = False
    threshold: float | None = None
    train: Certificate | None = None
    random: Figures | None = None
    groups: dict[str, Figures] | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "label": self.label, **self.figures.json()}
        out["second"] = self.second
        out["certified"] = self.certified
        if self.threshold is not None:
            out["threshold"] = None if self.threshold == float("inf") else self.threshold
        if self.train is not None:
            out["train"] = self.train.summary()
        if self.random is not None:
            out["random_same_share"] = self.random.json()
        if self.groups:
            out["groups"] = {name: figures.json() for name, figures in self.groups.items()}
        return out


@dataclass(frozen=True, slots=True)
class Report:
    cheap: str
    strong: str
    quality: float
    confidence: float
    chosen: str
    train_prompts: int
    test_prompts: int
    mean_cost: dict[str, float]
    rows: list[Row]
    random_at_target: Figures
    sample_size: int | None = None

    def row(self, key: str) -> Row:
        return next(r for r in self.rows if r.key == key)

    def json(self) -> dict[str, Any]:
        chosen = self.row(self.chosen)
        strong_cost = self.mean_cost[self.strong]
        return {
            "cheap": self.cheap,
            "strong": self.strong,
            "quality_target": self.quality,
            "confidence": self.confidence,
            "certified_sample_size": self.sample_size,
            "chosen": self.chosen,
            "second": chosen.second,
            "saving": chosen.figures.saving,
            "quality_vs_strong": chosen.figures.quality_vs_strong,
            "to_strong": chosen.figures.to_strong,
            "train_prompts": self.train_prompts,
            "test_prompts": self.test_prompts,
            "mean_cost_per_call": {
                m: {"usd": c, "vs_strong": c / strong_cost} for m, c in self.mean_cost.items()
            },
            "variants": [r.json() for r in self.rows],
            "random_at_target": self.random_at_target.json(),
        }


def evaluate(router: LearnedRouter, records: Sequence[Record]) -> Report:
    """Run every fitted variant of the router's artifact over ``records`` (the test prompts)."""
    artifact = router.artifact
    check_models(records, [artifact.cheap, artifact.strong], "test records")
    seconds = [f.variant.second for f in artifact.fits if f.variant.second is not None]
    check_models(records, seconds, "test records", need_correct=False)
    outcomes = Outcomes.from_records(records, [artifact.cheap, artifact.strong, *seconds])
    prompts = [r.prompt for r in records]
    features = router.features(prompts)
    everyone = np.ones(len(records), dtype=np.bool_)
    base = Variant(artifact.cheap, artifact.strong)
    rows = [
        Row(STRONG_ONLY, f"strong-only ({artifact.strong})", _figures(base, outcomes, ~everyone)),
        Row(CHEAP_ONLY, f"cheap-only ({artifact.cheap})", _figures(base, outcomes, everyone)),
    ]
    for fit in artifact.fits:
        variant, certificate = fit.variant, fit.certificate
        if variant.second is not None:
            rows.append(
                Row(
                    f"{CASCADE}:{variant.second}",
                    f"agreement cascade ({variant.second})",
                    _figures(variant, outcomes, everyone),
                    second=variant.second,
                )
            )
        cheap_side = fit.model.scores(features, prompts) >= certificate.threshold
        figures = _figures(variant, outcomes, cheap_side)
        rows.append(
            Row(
                variant.key,
                "pre-call router"
                if variant.second is None
                else f"pre-call + cascade ({variant.second})",
                figures,
                second=variant.second,
                certified=True,
                threshold=certificate.threshold,
                train=certificate,
                random=_random(base, outcomes, figures.to_strong),
                groups=_by_group(variant, outcomes, cheap_side, records),
            )
        )
    models = [artifact.cheap, artifact.strong, *seconds]
    return Report(
        cheap=artifact.cheap,
        strong=artifact.strong,
        quality=artifact.quality,
        confidence=artifact.confidence,
        chosen=artifact.chosen,
        train_prompts=artifact.trained_on,
        test_prompts=len(records),
        mean_cost={m: float(outcomes.cost[m].mean()) for m in models},
        rows=rows,
        random_at_target=_random(
            base, outcomes, _random_share_for(base, outcomes, artifact.quality)
        ),
        sample_size=artifact.fit().certificate.sample_size,
    )


def _figures(variant: Variant, outcomes: Outcomes, cheap_side: BoolArray) -> Figures:
    served = Served.run(variant, outcomes, cheap_side)
    strong_correct = outcomes.correct[variant.strong]
    strong_cost = outcomes.cost[variant.strong]
    return Figures(
        saving=1.0 - float(served.cost.sum() / strong_cost.sum()),
        quality_vs_strong=_ratio(served.correct, strong_correct),
        accuracy=float(served.correct.mean()),
        to_strong=float(served.strong_answered.mean()),
        cheap_calls=float(served.cheap_calls.mean()),
    )


def _by_group(
    variant: Variant, outcomes: Outcomes, cheap_side: BoolArray, records: Sequence[Record]
) -> dict[str, Figures]:
    """The same figures within each record group (none when the records name no groups)."""
    groups = np.array([r.group or "" for r in records])
    names = sorted(set(groups.tolist()) - {""})
    return {
        name: _figures(variant, outcomes.subset(groups == name), cheap_side[groups == name])
        for name in names
    }


def _random(base: Variant, outcomes: Outcomes, to_strong: float) -> Figures:
    """Expected figures of sending each prompt to the strong model with chance ``to_strong``."""
    cheap_correct, strong_correct = outcomes.correct[base.cheap], outcomes.correct[base.strong]
    cheap_cost, strong_cost = outcomes.cost[base.cheap], outcomes.cost[base.strong]
    correct = (1.0 - to_strong) * cheap_correct + to_strong * strong_correct
    cost = (1.0 - to_strong) * cheap_cost + to_strong * strong_cost
    return Figures(
        saving=1.0 - float(cost.sum() / strong_cost.sum()),
        quality_vs_strong=_ratio(correct, strong_correct),
        accuracy=float(correct.mean()),
        to_strong=to_strong,
        cheap_calls=1.0 - to_strong,
    )


def _random_share_for(base: Variant, outcomes: Outcomes, quality: float) -> float:
    """The smallest share to strong at which random routing's expected quality meets ``quality``."""
    cheap_total = float(outcomes.correct[base.cheap].sum())
    strong_total = float(outcomes.correct[base.strong].sum())
    if cheap_total >= quality * strong_total:
        return 0.0
    # Quality is linear in the share: (1 - f) cheap + f strong = quality * strong.
    return min(1.0, (quality * strong_total - cheap_total) / (strong_total - cheap_total))


def _ratio(correct: FloatArray, strong_correct: FloatArray) -> float:
    total = float(strong_correct.sum())
    return float(correct.sum()) / total if total > 0 else float("nan")
