"""A learned pre-call router: from a prompt alone, send it to the cheap or the strong tier.

Public surface::

    records = load_split(Path("../shared/data/routing"), "train")
    artifact = train_router(records, load_encoder(), TrainOptions("claude-instant-v1",
                                                                 "gpt-4-1106-preview"))
    artifact.save(Path("out/router"))
    router = LearnedRouter.load(Path("out/router"))
    router.decide("Which gas ...?")  # Decision(tier="strong", score=0.41, threshold=0.63, ...)

The threshold is certified to a quality target on cross-fitted training scores
(:mod:`tiergate.precall.threshold` has the argument); ``evaluate`` reports it on unseen prompts
beside random routing and the agreement cascade. Training needs the ``local`` extra
(scikit-learn, an encoder); serving needs numpy and an encoder.
"""

from tiergate.precall.artifact import RouterArtifact, RouterArtifactError, VariantFit
from tiergate.precall.base import CHEAP, STRONG, Decision, PrecallRouter, Tier
from tiergate.precall.evaluate import Report, evaluate
from tiergate.precall.policy import Variant
from tiergate.precall.records import (
    Outcome,
    Record,
    RecordsError,
    load_split,
    normalise_answer,
    read_records,
    with_silver_labels,
    write_records,
)
from tiergate.precall.router import LearnedRouter
from tiergate.precall.threshold import Certificate, fit_threshold
from tiergate.precall.train import TrainingError, TrainOptions, train_router

__all__ = [
    "CHEAP",
    "STRONG",
    "Certificate",
    "Decision",
    "LearnedRouter",
    "Outcome",
    "PrecallRouter",
    "Record",
    "RecordsError",
    "Report",
    "RouterArtifact",
    "RouterArtifactError",
    "Tier",
    "TrainOptions",
    "TrainingError",
    "Variant",
    "VariantFit",
    "evaluate",
    "fit_threshold",
    "load_split",
    "normalise_answer",
    "read_records",
    "train_router",
    "with_silver_labels",
    "write_records",
]
