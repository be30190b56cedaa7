"""The learned pre-call router on RouterBench (ARC-Challenge + Winogrande): every variant.

For each pair (claude-instant-v1 -> gpt-4-1106-preview, claude-instant-v1 -> claude-v1): train
on the train files, fix every threshold there, and report on the test files, one table per pair
with every variant and every candidate second opinion: strong-only, cheap-only, the pre-call
router, the plain agreement cascade and pre-call + cascade per second cheap model, and random
routing at the chosen variant's share. This is ``tiergate router eval --all`` for both pairs.

Other sections, on request with ``--section`` (each uses the train files only, never the test
files):

- ``bounds``: at each variant's fitted threshold, how wide the paired-bootstrap margin is next
  to a Clopper-Pearson bound on each accuracy joined by a union bound, and the standard error
  of the quality ratio (bootstrap), also scaled to the test split's size.
- ``train``: every variant's figures on the train prompts themselves (cross-fitted scores),
  including the plain agreement cascades, which have no threshold to fit.
- ``selection``: the design comparison behind the defaults. Repeated random 60/40 splits of
  the train records: fit on 60% (cross-fitted, certified), measure on the other 40%, for each
  predictor (logistic regression, k-nearest neighbours, a small MLP) and target (the cheap
  model's correctness, or the variant's own served correctness).
- ``coverage``: how often the certified quality misses the target on synthetic data with a
  known truth.
- ``latency``: what ``decide(prompt)`` costs per request, one prompt at a time, beside the
  encoder's share of it (test prompts' text only; no outcomes read).

RouterBench has no clear licence: it is read from ``../shared/data/routing`` (or
``TIERGATE_DATA=DIR``), never copied. Run::

    .venv/bin/python bench/precall_router.py [--section table|bounds|selection|coverage|latency]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import beta

from tiergate.cli.router import render_report
from tiergate.encoders import DEFAULT_ENCODER, Encoder, load_encoder
from tiergate.encoders.static import cache_root
from tiergate.precall import (
    LearnedRouter,
    Record,
    RouterArtifact,
    TrainOptions,
    evaluate,
    load_split,
    train_router,
)
from tiergate.precall.features import feature_matrix
from tiergate.precall.model import cross_fit, fold_of
from tiergate.precall.policy import Outcomes, Served, Variant
from tiergate.precall.threshold import fit_threshold

DATA = Path(os.environ.get("TIERGATE_DATA", Path(__file__).parents[2] / "shared" / "data"))
CHEAP = "claude-instant-v1"
PAIRS = ((CHEAP, "gpt-4-1106-preview"), (CHEAP, "claude-v1"))
TEST_SIZE = 817  # prompts in the test split, to scale a standard error to it
SELECTION_SECONDS = ("zero-one-ai/Yi-34B-Chat", "mistralai/mixtral-8x7b-chat")
SECTIONS = ("table", "bounds", "train", "selection", "coverage", "latency")
FloatArray = NDArray[np.float64]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=DEFAULT_ENCODER)
    parser.add_argument("--quality", type=float, default=0.95)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument(
        "--section",
        action="append",
        choices=SECTIONS,
        help="what to run (repeatable; default: table)",
    )
    parser.add_argument("--splits", type=int, default=6, help="selection: random splits")
    parser.add_argument("--json", action="store_true", help="print the tables' reports as JSON")
    args = parser.parse_args(argv)
    sections = args.section or ["table"]

    routing = DATA / "routing"
    train = load_split(routing, "train")
    encoder = load_encoder(args.encoder)
    cache = cache_root() / "precall"
    if "selection" in sections:
        print(selection_study(train, encoder, cache, args.splits, args.quality, args.confidence))
    if "coverage" in sections:
        print(coverage_study())
    artifacts: dict[str, RouterArtifact] = {}
    if {"table", "bounds", "train", "latency"} & set(sections):
        for cheap, strong in PAIRS:
            options = TrainOptions(cheap, strong, quality=args.quality, confidence=args.confidence)
            artifacts[strong] = train_router(train, encoder, options, cache=cache)
    if "bounds" in sections:
        print(bound_widths(train, artifacts))
    if "train" in sections:
        for artifact in artifacts.values():
            print(train_figures(artifact, encoder, train))
    if "latency" in sections:
        prompts = [r.prompt for r in load_split(routing, "test")[:: 817 // 60 or 1]]
        print(latency(artifacts[PAIRS[0][1]], encoder, prompts))
    if "table" in sections:
        test = load_split(routing, "test")
        reports = {}
        for strong, artifact in artifacts.items():
            report = evaluate(LearnedRouter(artifact, encoder), test)
            reports[f"{artifact.cheap} -> {strong}"] = report.json()
            if not args.json:
                print(render_report(report, show_all=True) + "\n")
        if args.json:
            print(json.dumps(reports, indent=2))
    return 0


def bound_widths(train: Sequence[Record], artifacts: dict[str, RouterArtifact]) -> str:
    """Margin between the point quality and its lower bound, two ways, at the fitted thresholds.

    Clopper-Pearson union: lower bound on the policy's accuracy over the upper bound on
    strong-only's, each at ``delta / 2``: valid without pairing, and wide because it is.
    """
    lines = [
        "Bound margins on the train prompts at each fitted threshold (quality points):",
        f"{'pair':<30} {'variant':<50} {'point':>7} {'bootstrap':>10} {'CP union':>9} "
        f"{'ratio':>6} {'std err':>8} {'at 817':>7}",
    ]
    for strong, artifact in artifacts.items():
        seconds = [f.variant.second for f in artifact.fits if f.variant.second]
        outcomes = Outcomes.from_records(train, [artifact.cheap, strong, *seconds])
        prompts = [r.prompt for r in train]
        features, _ = feature_matrix(_encoder_of(artifact), prompts, artifact.scale, _cache())
        for fit in artifact.fits:
            certificate = fit.certificate
            if not certificate.certified_any:
                continue
            # The cross-fitted scores are what the model gives each training prompt by its fold.
            scores = fit.model.scores(features, prompts)
            served = Served.run(fit.variant, outcomes, scores >= certificate.threshold)
            n = len(prompts)
            delta = certificate.delta
            policy_lower = _cp_lower(int(served.correct.sum()), n, delta / 2)
            strong_upper = _cp_upper(int(outcomes.correct[strong].sum()), n, delta / 2)
            cp_margin = certificate.quality - policy_lower / strong_upper
            boot_margin = certificate.quality - certificate.quality_lower
            error = _ratio_standard_error(served.correct, outcomes.correct[strong])
            lines.append(
                f"{'instant -> ' + strong:<30} {fit.variant.key:<50} "
                f"{certificate.quality:>7.2%} {boot_margin:>10.2%} {cp_margin:>9.2%} "
                f"{cp_margin / boot_margin:>6.1f} {error:>8.2%} "
                f"{error * (n / TEST_SIZE) ** 0.5:>7.2%}"
            )
    return "\n".join(lines) + "\n"


def _ratio_standard_error(
    served: FloatArray, strong: FloatArray, draws: int = 2000, seed: int = 0
) -> float:
    """Paired-bootstrap standard error of sum(served) / sum(strong)."""
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(served.size, np.full(served.size, 1 / served.size), size=draws)
    return float(((weights @ served) / (weights @ strong)).std())


def train_figures(artifact: RouterArtifact, encoder: Encoder, train: Sequence[Record]) -> str:
    """Every variant on the train prompts, scored cross-fitted (each by its own fold's model)."""
    report = evaluate(LearnedRouter(artifact, encoder), train)
    lines = [
        f"On the {len(train):,} train prompts (cross-fitted): "
        f"{artifact.cheap} -> {artifact.strong}",
        f"{'policy':<56} {'to strong':>9} {'saving':>7} {'quality vs strong':>17}",
    ]
    for row in report.rows:
        f = row.figures
        lines.append(
            f"{row.label:<56} {f.to_strong:>9.1%} {f.saving:>7.1%} {f.quality_vs_strong:>17.1%}"
        )
    return "\n".join(lines) + "\n"


_ENCODER_CACHE: dict[str, Encoder] = {}


def _encoder_of(artifact: RouterArtifact) -> Encoder:
    if artifact.encoder not in _ENCODER_CACHE:
        _ENCODER_CACHE[artifact.encoder] = load_encoder(artifact.encoder)
    return _ENCODER_CACHE[artifact.encoder]


def _cache() -> Path:
    return cache_root() / "precall"


def _cp_lower(successes: int, trials: int, delta: float) -> float:
    return 0.0 if successes == 0 else float(beta.ppf(delta, successes, trials - successes + 1))


def _cp_upper(successes: int, trials: int, delta: float) -> float:
    if successes == trials:
        return 1.0
    return float(beta.ppf(1 - delta, successes + 1, trials - successes))


Scorer = Callable[[FloatArray, FloatArray, list[str]], tuple[Any, FloatArray]]


def selection_study(
    train: Sequence[Record],
    encoder: Encoder,
    cache: Path,
    splits: int,
    quality: float,
    confidence: float,
) -> str:
    """Held-out (40% of train) saving and quality per predictor and target, mean over splits."""
    cheap, strong = PAIRS[0]
    prompts = [r.prompt for r in train]
    features, _ = feature_matrix(encoder, prompts, None, cache)
    outcomes = Outcomes.from_records(train, [cheap, strong, *SELECTION_SECONDS])
    variants = [Variant(cheap, strong)] + [Variant(cheap, strong, s) for s in SELECTION_SECONDS]
    delta = (1 - confidence) / len(variants)
    predictors: dict[str, Scorer] = {
        "logistic": lambda x, y, p: cross_fit(x, y, p),
        "knn-25": _sklearn_scorer("knn"),
        "mlp-64": _sklearn_scorer("mlp"),
    }
    lines = [
        f"Design comparison: {CHEAP} -> {strong}, {splits} random 60/40 splits of the train "
        f"records; fit and certify on 60%, measure on 40% (mean, and the lowest quality)",
        f"{'predictor':<10} {'target':<14} {'variant':<48} {'fit saving':>10} "
        f"{'held-out saving':>15} {'quality':>8} {'lowest':>7}",
    ]
    for name, scorer in predictors.items():
        for target in ("cheap", "served"):
            figures: dict[str, list[tuple[float, float, float]]] = {}
            for split in range(splits):
                chosen = np.random.default_rng(split).random(len(prompts)) < 0.6
                for variant in variants:
                    figures.setdefault(variant.key, []).append(
                        _held_out(
                            variant,
                            outcomes,
                            features,
                            prompts,
                            chosen,
                            scorer,
                            target,
                            quality,
                            delta,
                        )
                    )
            for key, rows in figures.items():
                values = np.array(rows)
                lines.append(
                    f"{name:<10} {target:<14} {key:<48} {values[:, 0].mean():>10.1%} "
                    f"{values[:, 1].mean():>15.1%} {values[:, 2].mean():>8.1%} "
                    f"{values[:, 2].min():>7.1%}"
                )
            sys.stdout.flush()
    return "\n".join(lines) + "\n"


def _held_out(
    variant: Variant,
    outcomes: Outcomes,
    features: FloatArray,
    prompts: list[str],
    fit_part: NDArray[np.bool_],
    scorer: Scorer,
    target: str,
    quality: float,
    delta: float,
) -> tuple[float, float, float]:
    side_correct, side_cost = variant.cheap_side(outcomes)
    y = outcomes.correct[variant.cheap] if target == "cheap" else side_correct
    fit_prompts = [p for p, keep in zip(prompts, fit_part, strict=True) if keep]
    held_prompts = [p for p, keep in zip(prompts, fit_part, strict=True) if not keep]
    model, scores = scorer(features[fit_part], y[fit_part], fit_prompts)
    certificate = fit_threshold(
        scores,
        outcomes.correct[variant.strong][fit_part],
        outcomes.cost[variant.strong][fit_part],
        side_correct[fit_part],
        side_cost[fit_part],
        quality=quality,
        delta=delta,
        bootstraps=1000,
    )
    held_scores = model.scores(features[~fit_part], held_prompts)
    held = outcomes.subset(~fit_part)
    served = Served.run(variant, held, held_scores >= certificate.threshold)
    strong_cost, strong_correct = held.cost[variant.strong], held.correct[variant.strong]
    return (
        certificate.saving,
        1.0 - float(served.cost.sum() / strong_cost.sum()),
        float(served.correct.sum() / strong_correct.sum()),
    )


class _FoldedSklearn:
    """Hash-fold cross-fitting, as the router does it, for any scikit-learn classifier."""

    def __init__(self, models: list[Any]) -> None:
        self.models = models

    def scores(self, features: FloatArray, prompts: Sequence[str]) -> FloatArray:
        folds = np.array([fold_of(p, len(self.models)) for p in prompts])
        out = np.zeros(len(prompts))
        for fold, model in enumerate(self.models):
            inside = folds == fold
            if inside.any():
                out[inside] = model.predict_proba(features[inside])[:, 1]
        return out


def _sklearn_scorer(kind: str, folds: int = 5) -> Scorer:
    def fit(x: FloatArray, y: FloatArray, prompts: list[str]) -> tuple[Any, FloatArray]:
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.neural_network import MLPClassifier
        from threadpoolctl import threadpool_limits

        labels = (y >= 0.5).astype(int)
        ids = np.array([fold_of(p, folds) for p in prompts])
        models = []
        with threadpool_limits(limits=1):
            for fold in range(folds):
                outside = ids != fold
                model: Any = (
                    KNeighborsClassifier(25, metric="cosine")
                    if kind == "knn"
                    else MLPClassifier(
                        (64,), alpha=1e-2, max_iter=500, early_stopping=True, random_state=0
                    )
                )
                models.append(model.fit(x[outside], labels[outside]))
        folded = _FoldedSklearn(models)
        return folded, folded.scores(x, prompts)

    return fit


def latency(artifact: RouterArtifact, encoder: Encoder, prompts: Sequence[str]) -> str:
    """Median milliseconds per prompt, one at a time: the encoder, and the router's own work.

    The router's own work is everything in ``decide`` but the encoder: the focus, the format
    cues, one dot product with the fold's weights, the comparison.
    """
    from tiergate.precall.features import cue_matrix, focus_text

    fit = artifact.fit()
    scale = artifact.scale
    encode_ms, own_ms = [], []
    encoder.encode([focus_text(prompts[0])])  # warm up
    for prompt in prompts:
        started = time.perf_counter()
        focus = focus_text(prompt)
        vector = encoder.encode([focus]).astype(np.float64)
        encoded = time.perf_counter()
        features = np.hstack([vector, scale.apply(cue_matrix([prompt], [focus]))])
        score = fit.model.scores(features, [prompt])[0]
        _ = score >= fit.certificate.threshold
        done = time.perf_counter()
        encode_ms.append((encoded - started) * 1000)
        own_ms.append((done - encoded) * 1000)
    return (
        f"decide(prompt), one at a time, {len(prompts)} test prompts, encoder {encoder.name}:\n"
        f"  median encoder {np.median(encode_ms):.1f} ms; the router's own work "
        f"{np.median(own_ms) * 1000:.0f} us per decision\n"
    )


def coverage_study(seeds: int = 200) -> str:
    """Synthetic truth: cheap right with chance 0.5 + 0.45 u (u the score), strong with 0.9."""

    def true_quality(t: float) -> float:
        t = min(max(t, 0.0), 1.0)
        return (0.5 * (1 - t) + 0.225 * (1 - t * t) + 0.9 * t) / 0.9

    lines = [
        f"Coverage on synthetic data ({seeds} seeds; target 95%; the ideal cheap share is 56%):",
        f"{'prompts':>8} {'delta':>6} {'missed target':>13} {'mean cheap share':>16}",
    ]
    for n, delta in ((1500, 0.1), (1500, 0.05), (400, 0.1)):
        misses, shares = 0, []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            score = rng.random(n)
            cheap = (rng.random(n) < 0.5 + 0.45 * score).astype(float)
            strong = (rng.random(n) < 0.9).astype(float)
            certificate = fit_threshold(
                score,
                strong,
                np.ones(n),
                cheap,
                np.full(n, 0.1),
                quality=0.95,
                delta=delta,
                bootstraps=1000,
                seed=seed,
            )
            misses += true_quality(certificate.threshold) < 0.95
            shares.append(certificate.cheap_side_share)
        lines.append(f"{n:>8} {delta:>6} {misses / seeds:>13.1%} {np.mean(shares):>16.1%}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
