"""Train a pre-call router from records: features, cross-fitted scores, certified thresholds.

Steps:

1. Every prompt becomes features (:mod:`tiergate.precall.features`).
2. The candidate policies are pre-call alone and pre-call + cascade with each candidate second
   cheap model (:mod:`tiergate.precall.policy`). For each, K hash-fold logistic models learn
   whether the policy's cheap side serves a good answer (pre-call: the cheap model's
   ``correct``; cascade: the agreed cheap answer's, or the strong one's after escalation) and
   give each training prompt a cross-fitted score (:mod:`tiergate.precall.model`). A cascade
   variant's own target ranked held-out prompts better than the cheap model's correctness in a
   comparison on RouterBench's train split (``docs/router.md``).
3. Each gets a threshold certified to the quality target (:mod:`tiergate.precall.threshold`)
   at ``delta / m`` for ``m`` candidates, so that keeping the best one still leaves the
   guarantee at ``1 - delta`` overall.
4. The chosen variant is the one with the largest calibration saving; the artifact keeps every
   fitted variant so that ``router eval`` can report each.

Second cheap models (``seconds``): ``None`` means every model in every record, other than the
two tiers, that has answers and costs no more in total than the cheap model: a second opinion
is a cheap model too. The rule looks at prices only, never at correctness, so it does not bias
the certificate; each candidate costs the others a little confidence (the ``m`` above), so the
list is kept short.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tiergate.encoders.base import Encoder
from tiergate.errors import TiergateError
from tiergate.precall.artifact import RouterArtifact, VariantFit
from tiergate.precall.features import feature_matrix
from tiergate.precall.model import DEFAULT_C, DEFAULT_FOLDS, cross_fit
from tiergate.precall.policy import Outcomes, Variant
from tiergate.precall.records import Record, check_models, models_in_every_record
from tiergate.precall.threshold import DEFAULT_BOOTSTRAPS, fit_threshold


class TrainingError(TiergateError, ValueError):
    """A training request the records cannot serve (a model missing, a bad target)."""


@dataclass(frozen=True, slots=True)
class TrainOptions:
    cheap: str
    strong: str
    quality: float = 0.95
    confidence: float = 0.95
    seconds: tuple[str, ...] | None = None
    folds: int = DEFAULT_FOLDS
    c: float = DEFAULT_C
    bootstraps: int = DEFAULT_BOOTSTRAPS
    sample_size: int | None = None
    seed: int = 0

    def check(self) -> None:
        if self.cheap == self.strong:
            raise TrainingError(f"the cheap and strong models are both {self.cheap!r}")
        if not 0.0 < self.quality <= 1.0:
            raise TrainingError(f"quality must be in (0, 1], got {self.quality}")
        if not 0.0 < self.confidence < 1.0:
            raise TrainingError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.folds < 2:
            raise TrainingError(f"folds must be at least 2, got {self.folds}")
        if self.seconds and {self.cheap, self.strong} & set(self.seconds):
            raise TrainingError("a second opinion must be a third model, not a tier")


def candidate_seconds(records: Sequence[Record], options: TrainOptions) -> list[str]:
    """The second cheap models to try (see the module docstring)."""
    if options.seconds is not None:
        check_models(records, options.seconds, "second opinion", need_correct=False)
        outcomes = Outcomes.from_records(records, list(options.seconds))
        for name in options.seconds:
            if not outcomes.has_answers(name):
                raise TrainingError(f"second opinion {name!r} has no answers in the records")
        return list(options.seconds)
    models = [
        m for m in models_in_every_record(records) if m not in (options.cheap, options.strong)
    ]
    outcomes = Outcomes.from_records(records, [options.cheap, options.strong, *models])
    if not outcomes.has_answers(options.cheap):
        return []
    budget = outcomes.cost[options.cheap].sum()
    return [m for m in models if outcomes.has_answers(m) and outcomes.cost[m].sum() <= budget]


def train_router(
    records: Sequence[Record],
    encoder: Encoder,
    options: TrainOptions,
    *,
    cache: Path | None = None,
) -> RouterArtifact:
    options.check()
    if len(records) < 2 * options.folds:
        raise TrainingError(f"need at least {2 * options.folds} records, got {len(records)}")
    check_models(records, [options.cheap, options.strong], "training records")
    seconds = candidate_seconds(records, options)
    prompts = [r.prompt for r in records]
    outcomes = Outcomes.from_records(records, [options.cheap, options.strong, *seconds])
    features, scale = feature_matrix(encoder, prompts, None, cache)
    variants = [Variant(options.cheap, options.strong)]
    variants += [Variant(options.cheap, options.strong, second) for second in seconds]
    delta = (1.0 - options.confidence) / len(variants)
    fits = tuple(
        _fit_variant(variant, outcomes, features, prompts, options, delta) for variant in variants
    )
    chosen = max(fits, key=lambda f: (f.certificate.saving, f.variant.second is None))
    return RouterArtifact(
        encoder=encoder.name,
        cheap=options.cheap,
        strong=options.strong,
        quality=options.quality,
        confidence=options.confidence,
        scale=scale,
        fits=fits,
        chosen=chosen.variant.key,
        trained_on=len(records),
        data_hash=records_hash(records, [options.cheap, options.strong, *seconds]),
    )


def _fit_variant(
    variant: Variant,
    outcomes: Outcomes,
    features: NDArray[np.float64],
    prompts: Sequence[str],
    options: TrainOptions,
    delta: float,
) -> VariantFit:
    side_correct, side_cost = variant.cheap_side(outcomes)
    model, scores = cross_fit(features, side_correct, prompts, folds=options.folds, c=options.c)
    certificate = fit_threshold(
        scores,
        outcomes.correct[variant.strong],
        outcomes.cost[variant.strong],
        side_correct,
        side_cost,
        quality=options.quality,
        delta=delta,
        bootstraps=options.bootstraps,
        sample_size=options.sample_size,
        seed=options.seed,
    )
    return VariantFit(variant, model, certificate)


def records_hash(records: Sequence[Record], models: Sequence[str]) -> str:
    """A fingerprint of the prompts and the named models' outcomes, in order."""
    digest = hashlib.sha256()
    for record in records:
        outcomes = {m: record.models[m] for m in models if m in record.models}
        row = [record.prompt, {m: [o.correct, o.cost, o.answer] for m, o in outcomes.items()}]
        digest.update(json.dumps(row, sort_keys=True).encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()
