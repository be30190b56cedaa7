"""Training, saving, loading and serving a router, on synthetic records with a known pattern."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tiergate.precall import (
    CHEAP,
    STRONG,
    Decision,
    LearnedRouter,
    PrecallRouter,
    RouterArtifact,
    RouterArtifactError,
    TrainingError,
    TrainOptions,
    evaluate,
    train_router,
)
from tiergate.precall.model import cross_fit, fold_of

from .helpers import WordHashEncoder, synthetic_records

OPTIONS = TrainOptions("cheap", "strong", quality=0.95, confidence=0.9, bootstraps=300)


@pytest.fixture(scope="module")
def artifact() -> RouterArtifact:
    return train_router(synthetic_records(600), WordHashEncoder(), OPTIONS)


def test_the_router_sends_hard_topics_to_the_strong_tier(artifact: RouterArtifact) -> None:
    router = LearnedRouter(artifact, WordHashEncoder(), variant="precall")
    easy = router.decide("Question 9999: tell me about the cat please.\nA) yes\nB) no")
    hard = router.decide("Question 9999: tell me about the quantum please.\nA) yes\nB) no")
    assert isinstance(router, PrecallRouter)
    assert easy.tier == CHEAP and hard.tier == STRONG
    assert easy.score > easy.threshold > hard.score
    assert easy.second_opinion is None


def test_candidates_are_cheap_models_and_the_best_certified_is_chosen(
    artifact: RouterArtifact,
) -> None:
    # "pricey" costs more than the cheap model, so it is no candidate for a second opinion.
    assert [f.variant.key for f in artifact.fits] == ["precall", "precall+cascade:second"]
    chosen = artifact.fit()
    assert chosen.certificate.saving == max(f.certificate.saving for f in artifact.fits)
    for fit in artifact.fits:
        assert fit.certificate.delta == pytest.approx(0.1 / 2)  # union bound over 2 variants
        assert fit.certificate.quality_lower >= 0.95 or not fit.certificate.certified_any


def test_save_and_load_give_the_same_decisions(artifact: RouterArtifact, tmp_path: Path) -> None:
    artifact.save(tmp_path / "router")
    loaded = RouterArtifact.load(tmp_path / "router")
    prompts = [r.prompt for r in synthetic_records(50, seed=7)]
    before = LearnedRouter(artifact, WordHashEncoder()).decide_many(prompts)
    after = LearnedRouter(loaded, WordHashEncoder()).decide_many(prompts)
    assert before == after
    assert [LearnedRouter(loaded, WordHashEncoder()).decide(p) for p in prompts[:5]] == before[:5]
    for original, reloaded in zip(artifact.fits, loaded.fits, strict=True):
        np.testing.assert_array_equal(original.model.weights, reloaded.model.weights)
        assert original.certificate == reloaded.certificate
    metadata = json.loads((tmp_path / "router" / "router.json").read_text())
    assert metadata["chosen"] == artifact.chosen and metadata["encoder"] == "test:word-hash"


def test_a_cascade_decision_escalates_on_disagreement() -> None:
    cheap = Decision(CHEAP, 0.9, 0.5, second_opinion="second")
    assert cheap.after(agree=True) == CHEAP
    assert cheap.after(agree=False) == STRONG
    assert Decision(STRONG, 0.1, 0.5, "second").after(agree=True) == STRONG
    assert Decision(CHEAP, 0.9, 0.5).after(agree=False) == CHEAP


def test_evaluation_reports_every_variant_beside_the_baselines(artifact: RouterArtifact) -> None:
    report = evaluate(LearnedRouter(artifact, WordHashEncoder()), synthetic_records(400, seed=1))
    keys = [row.key for row in report.rows]
    assert keys == [
        "strong-only",
        "cheap-only",
        "precall",
        "cascade:second",
        "precall+cascade:second",
    ]
    strong_only, cheap_only = report.row("strong-only"), report.row("cheap-only")
    assert strong_only.figures.saving == 0.0 and strong_only.figures.quality_vs_strong == 1.0
    assert cheap_only.figures.saving == pytest.approx(0.9)
    assert report.row("cascade:second").figures.cheap_calls == 2.0
    chosen = report.row(report.chosen)
    assert chosen.random is not None and chosen.random.to_strong == chosen.figures.to_strong
    # The router beats random routing at the same share of strong calls.
    assert chosen.figures.quality_vs_strong > chosen.random.quality_vs_strong
    precall = report.row("precall")
    assert precall.groups is not None and set(precall.groups) == {"easy", "hard"}
    assert precall.groups["hard"].to_strong > precall.groups["easy"].to_strong
    as_json = report.json()
    assert as_json["saving"] == chosen.figures.saving
    assert as_json["quality_vs_strong"] == chosen.figures.quality_vs_strong


def test_cross_fitted_scores_come_from_the_model_that_did_not_see_the_prompt() -> None:
    """Changing the labels inside one fold leaves that fold's own scores exactly as they were."""
    rng = np.random.default_rng(0)
    prompts = [f"prompt {i}" for i in range(300)]
    features = rng.normal(size=(300, 5))
    targets = (features[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(float)
    model, scores = cross_fit(features, targets, prompts, folds=3)
    inside = np.array([fold_of(p, 3) == 0 for p in prompts])
    assert 50 < inside.sum() < 150
    flipped = np.where(inside, 1.0 - targets, targets)
    _, rescored = cross_fit(features, flipped, prompts, folds=3)
    np.testing.assert_array_equal(rescored[inside], scores[inside])
    assert not np.allclose(rescored[~inside], scores[~inside])
    # Serving scores each prompt with its fold's model: the same numbers as cross-fitting.
    np.testing.assert_allclose(model.scores(features, prompts), scores)
    assert fold_of("same text", 5) == fold_of("same text", 5)
    assert float(np.corrcoef(scores, features[:, 0])[0, 1]) > 0.8


def test_graded_targets_train() -> None:
    rng = np.random.default_rng(1)
    prompts = [f"p{i}" for i in range(200)]
    features = rng.normal(size=(200, 3))
    graded = 1.0 / (1.0 + np.exp(-2.0 * features[:, 1]))
    _, scores = cross_fit(features, graded, prompts, folds=2)
    assert float(np.corrcoef(scores, graded)[0, 1]) > 0.9


def test_training_refuses_what_it_cannot_do() -> None:
    records = synthetic_records(40)
    encoder = WordHashEncoder()
    with pytest.raises(TrainingError, match="both 'cheap'"):
        train_router(records, encoder, TrainOptions("cheap", "cheap"))
    with pytest.raises(TrainingError, match="a third model"):
        train_router(records, encoder, TrainOptions("cheap", "strong", seconds=("strong",)))
    with pytest.raises(Exception, match="no model 'nope'"):
        train_router(records, encoder, TrainOptions("nope", "strong"))
    with pytest.raises(Exception, match="no 'correct' for 'second'"):
        train_router(records, encoder, TrainOptions("second", "strong"))
    with pytest.raises(TrainingError, match="at least 10 records"):
        train_router(records[:5], encoder, TrainOptions("cheap", "strong"))


def test_a_router_refuses_another_encoder_and_a_damaged_folder(
    artifact: RouterArtifact, tmp_path: Path
) -> None:
    class OtherEncoder(WordHashEncoder):
        name = "test:other"

    with pytest.raises(RouterArtifactError, match="trained with encoder 'test:word-hash'"):
        LearnedRouter(artifact, OtherEncoder())
    with pytest.raises(RouterArtifactError, match="not a router"):
        RouterArtifact.load(tmp_path)
    artifact.save(tmp_path / "r")
    np.save(tmp_path / "r" / "weights.npy", np.zeros((1, 2, 3)))
    with pytest.raises(RouterArtifactError, match="do not fit"):
        RouterArtifact.load(tmp_path / "r")
