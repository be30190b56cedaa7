from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tiergate.calibration import Calibrator
from tiergate.classifier import FORMAT_VERSION, LOCAL_FEATURES, ArtifactError, LocalModel
from tiergate.datasets import Example
from tiergate.encoders import Encoder


def test_predictions_are_accurate_and_self_consistent(
    trained: LocalModel, test_examples: list[Example]
) -> None:
    predictions = trained.predict([e.text for e in test_examples])
    accuracy = np.mean(
        [p.label == e.label for p, e in zip(predictions, test_examples, strict=True)]
    )
    assert accuracy >= 0.85
    for prediction in predictions:
        assert prediction.probabilities.shape == (len(trained.labels),)
        assert prediction.probabilities.sum() == pytest.approx(1.0)
        assert prediction.probability == pytest.approx(
            prediction.probabilities[trained.labels.index(prediction.label)]
        )
        assert prediction.probability == prediction.probabilities.max()
        assert 0.0 <= prediction.margin <= prediction.probability
        assert len(prediction.neighbours) == 10
        similarities = [n.similarity for n in prediction.neighbours]
        assert similarities == sorted(similarities, reverse=True)
        assert prediction.nearest_similarity == pytest.approx(similarities[0])
        share = np.mean([n.label == prediction.label for n in prediction.neighbours])
        assert prediction.vote_share == pytest.approx(share)


def test_neighbours_are_the_labelled_examples_closest_in_meaning(trained: LocalModel) -> None:
    [prediction] = trained.predict(["I lost my card, someone stole it"], k=3)
    assert prediction.label == "lost_or_stolen_card"
    assert [n.label for n in prediction.neighbours] == ["lost_or_stolen_card"] * 3


def test_save_load_round_trip(trained: LocalModel, encoder: Encoder, tmp_path: Path) -> None:
    texts = ["is my top up going through?", "how much is the fee to take cash out"]
    trained.save(tmp_path / "model")
    metadata = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert metadata["format_version"] == FORMAT_VERSION
    assert metadata["encoder"] == "all-MiniLM-L6-v2"
    assert metadata["labels"] == list(trained.labels)
    assert metadata["examples"] == 300
    assert metadata["data_hash"].startswith("sha256:")
    assert {"tiergate_version", "created", "dimension"} <= set(metadata)
    loaded = LocalModel.load(tmp_path / "model", encoder=encoder)
    assert loaded.labels == trained.labels
    for before, after in zip(trained.predict(texts), loaded.predict(texts), strict=True):
        assert after.label == before.label
        np.testing.assert_allclose(after.probabilities, before.probabilities, rtol=1e-6)
        assert after.neighbours == before.neighbours


def test_load_refuses_an_unknown_format_version(trained: LocalModel, tmp_path: Path) -> None:
    trained.save(tmp_path / "model")
    path = tmp_path / "model" / "metadata.json"
    metadata = json.loads(path.read_text())
    path.write_text(json.dumps(dict(metadata, format_version=FORMAT_VERSION + 1)))
    with pytest.raises(ArtifactError, match=f"format version {FORMAT_VERSION + 1} is not"):
        LocalModel.load(tmp_path / "model")
    with pytest.raises(ArtifactError, match="not a tiergate local model"):
        LocalModel.load(tmp_path)


def test_add_examples_grows_the_pool_with_provenance_and_retrain_learns_new_labels(
    encoder: Encoder, train_examples: list[Example], tmp_path: Path
) -> None:
    model = LocalModel.train(train_examples, encoder)
    new_texts = [
        "please close my account for good",
        "I want to delete my account",
        "how do I terminate my account",
        "cancel my account now",
    ]
    added = model.add_examples(new_texts, ["terminate_account"] * 4, "claude-sonnet-4-6")
    assert added == 4
    assert len(model.examples) == 304
    assert model.examples[-1] == Example(
        "cancel my account now", "terminate_account", "claude-sonnet-4-6"
    )
    assert "terminate_account" in model.labels
    [before] = model.predict(["I would like to close my account"], k=4)
    # The neighbour pool (few-shot examples) learns at once, the linear model at retrain.
    assert {n.provenance for n in before.neighbours} == {"claude-sonnet-4-6"}
    assert before.label != "terminate_account"
    model.retrain()
    [after] = model.predict(["I would like to close my account"])
    assert after.label == "terminate_account"
    model.save(tmp_path / "grown")
    metadata = json.loads((tmp_path / "grown" / "metadata.json").read_text())
    assert metadata["provenance_counts"] == {"gold": 300, "claude-sonnet-4-6": 4}
    reloaded = LocalModel.load(tmp_path / "grown", encoder=encoder)
    assert reloaded.examples[-1].provenance == "claude-sonnet-4-6"


def test_add_examples_checks_lengths(trained: LocalModel) -> None:
    with pytest.raises(ValueError, match="same length"):
        trained.add_examples(["a", "b"], ["card_arrival"])


def test_calibrated_probability_orders_right_above_wrong(
    trained: LocalModel, encoder: Encoder, test_examples: list[Example]
) -> None:
    folds = trained.cross_fit(folds=5, seed=0)
    assert len(folds.labels) == 300
    assert 0.7 < folds.correct.mean() < 1.0
    calibrator = Calibrator.fit(folds.features, folds.correct)
    assert calibrator.feature_names == LOCAL_FEATURES
    labels, features = trained.features([e.text for e in test_examples])
    correct = np.array([p == e.label for p, e in zip(labels, test_examples, strict=True)])
    p_correct = calibrator.predict(features)
    assert p_correct[correct].mean() > p_correct[~correct].mean()
    # Calibrated means the average predicted P(correct) tracks the observed accuracy.
    assert abs(p_correct.mean() - correct.mean()) < 0.08
    off_topic = calibrator.predict(trained.features(["what's the weather on mars tomorrow"])[1])
    assert off_topic[0] < np.median(p_correct)
