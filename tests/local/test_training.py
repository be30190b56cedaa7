"""Building the local model from route settings: fine-tuning, honest cross-fit, portable files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tiergate.classifier import LocalModel
from tiergate.classifier.settings import FinetuneSettings, LocalSettings
from tiergate.classifier.training import build_local_model
from tiergate.datasets import Example
from tiergate.encoders import OnnxEncoder, SentenceTransformerEncoder
from tiergate.encoders.finetune import distinct_label_batches, label_pairs

TINY_FINETUNE = FinetuneSettings(max_pairs=16, batch_size=8, max_seq_length=16, folds=2)


def test_pairs_share_a_label_and_batches_never_repeat_one() -> None:
    texts = [f"text {i}" for i in range(30)]
    labels = [f"label{i % 5}" for i in range(30)] + []
    pairs = label_pairs(texts, labels, max_pairs=20, seed=0)
    assert len(pairs) == 20
    by_text = dict(zip(texts, labels, strict=True))
    for anchor, positive, label in pairs:
        assert anchor != positive and by_text[anchor] == by_text[positive] == label
    assert {label for *_, label in pairs} == set(labels), "the cap keeps every label"
    for batch in distinct_label_batches(pairs, batch_size=4, seed=0):
        assert len({label for *_, label in batch}) == len(batch) > 1


def test_fine_tuned_model_carries_an_honest_cross_fit_and_reloads_anywhere(
    train_examples: list[Example],
    test_examples: list[Example],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = LocalSettings(runtime="torch", finetune=TINY_FINETUNE)
    messages: list[str] = []
    directory = tmp_path / "artifacts" / "local"
    model = build_local_model(train_examples, settings, directory, progress=messages.append)
    model.save(directory)
    assert any("cross-fitting fold 2/2" in message for message in messages)

    stored = model.cross_fit(folds=5, seed=123)  # the fine-tuning folds were fixed at train time
    assert stored.gold == [e.label for e in train_examples]
    assert len(stored.labels) == len(train_examples)
    assert 0.5 < stored.correct.mean() <= 1.0
    metadata = json.loads((directory / "metadata.json").read_text())
    assert metadata["encoder"] == "./encoder"
    assert metadata["training"]["cross_fit"]["finetuned_per_fold"] is True
    assert metadata["training"]["settings"]["finetune"]["max_pairs"] == TINY_FINETUNE.max_pairs

    texts = [e.text for e in test_examples]
    before = [p.label for p in model.predict(texts)]
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(directory, moved)
    shutil.rmtree(directory)
    monkeypatch.chdir(tmp_path)
    reloaded = LocalModel.load(moved)
    assert isinstance(reloaded.encoder, SentenceTransformerEncoder)
    assert reloaded.encoder.name == str(moved.resolve() / "encoder")
    assert [p.label for p in reloaded.predict(texts)] == before
    again = reloaded.cross_fit()
    np.testing.assert_array_equal(again.correct, stored.correct)
    for name, column in stored.features.items():
        np.testing.assert_allclose(again.features[name], column)

    # Examples added later were never seen by the encoder: they get classifier-only scores.
    reloaded.add_examples(["my card is lost"], ["lost_or_stolen_card"])
    extended = reloaded.cross_fit()
    assert len(extended.gold) == len(train_examples) + 1
    assert extended.gold[-1] == "lost_or_stolen_card"
    np.testing.assert_array_equal(extended.correct[:-1], stored.correct)


def test_a_fine_tuned_model_without_its_cross_fit_refuses_to_cross_fit(
    train_examples: list[Example], tmp_path: Path
) -> None:
    settings = LocalSettings(runtime="torch", finetune=TINY_FINETUNE)
    model = build_local_model(train_examples[:60], settings, tmp_path / "m", cross_fit=False)
    with pytest.raises(ValueError, match="not be out of sample"):
        model.cross_fit()


def test_onnx_model_exports_its_encoder_into_the_artifact(
    train_examples: list[Example], test_examples: list[Example], tmp_path: Path
) -> None:
    directory = tmp_path / "local"
    model = build_local_model(train_examples, LocalSettings(), directory)
    model.save(directory)
    assert isinstance(model.encoder, OnnxEncoder)
    assert model.encoder.config.quantize == "int8"
    metadata = json.loads((directory / "metadata.json").read_text())
    assert metadata["encoder"] == "onnx:encoder"
    assert not (directory / "crossfit.npz").exists(), "an unchanged encoder cross-fits on demand"
    texts = [e.text for e in test_examples]
    moved = tmp_path / "moved"
    shutil.move(directory, moved)
    reloaded = LocalModel.load(moved)
    assert [p.label for p in reloaded.predict(texts)] == [p.label for p in model.predict(texts)]
    accuracy = np.mean(
        [p.label == e.label for p, e in zip(reloaded.predict(texts), test_examples, strict=True)]
    )
    assert accuracy >= 0.85
