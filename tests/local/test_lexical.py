"""The lexical view: n-gram TF-IDF + logistic regression, multiplied with the encoder's view."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tiergate.classifier import LOCAL_FEATURES, LocalModel
from tiergate.classifier.features import LEXICAL_FEATURES
from tiergate.classifier.lexical import LexicalModel, combine, fit_lexical
from tiergate.classifier.settings import LocalSettings, LocalSettingsError
from tiergate.datasets import Example
from tiergate.encoders import Encoder, Vectors


class BlindEncoder:
    """Maps every text to the same vector: the encoder's view can tell nothing apart."""

    name = "blind"
    dimension = 8

    def encode(self, texts: Sequence[str]) -> Vectors:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        vectors[:, 0] = 1.0
        return vectors


# Two labels decided by one word, as BANKING77's exchange_rate / exchange_charge are.
WORDING = [
    Example(f"{opening} the exchange {noun} {closing}", label)
    for opening in ("what is", "tell me", "where do I see", "I want to know", "show me")
    for closing in ("today", "for euros", "please", "in the app")
    for noun, label in (("rate", "exchange_rate"), ("fee", "exchange_charge"))
]


def test_the_lexical_view_separates_labels_the_encoder_cannot() -> None:
    blind: Encoder = BlindEncoder()
    without = LocalModel.train(WORDING, blind)
    with_view = LocalModel.train(WORDING, blind, lexical=True)
    texts = ["could you show me the exchange fee", "which exchange rate do you use"]
    assert [p.label for p in with_view.predict(texts)] == ["exchange_charge", "exchange_rate"]
    # Alone, the blind encoder gives both texts the same answer.
    assert len({p.label for p in without.predict(texts)}) == 1
    [prediction] = with_view.predict(texts[:1])
    assert set(prediction.features) == set(LOCAL_FEATURES) | set(LEXICAL_FEATURES)
    assert prediction.features["lexical_probability"] > 0.5
    assert prediction.features["views_agree"] in (0.0, 1.0)


def test_probabilities_are_a_distribution_and_round_trip_through_plain_arrays(
    tmp_path: Path,
) -> None:
    ids = np.array([0 if e.label == "exchange_rate" else 1 for e in WORDING], dtype=np.intp)
    view = fit_lexical([e.text for e in WORDING], ids, 3)  # label 2 never seen
    texts = ["exchange fee please", "the rate", "zzz"]
    probabilities = view.probabilities(texts)
    assert probabilities.shape == (3, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities[:, 2].max() < 1e-6  # an unseen label is never likely
    np.savez(tmp_path / "view.npz", allow_pickle=False, **view.to_arrays())
    with np.load(tmp_path / "view.npz", allow_pickle=False) as stored:
        loaded = LexicalModel.from_arrays({name: stored[name] for name in stored.files})
    np.testing.assert_allclose(loaded.probabilities(texts), probabilities, rtol=1e-6)
    wider = view.with_unreachable_label()
    assert wider.probabilities(texts).shape == (3, 4)
    assert wider.probabilities(texts)[:, 3].max() < 1e-6


def test_combine_multiplies_the_views() -> None:
    linear = np.array([[0.6, 0.3, 0.1]])
    lexical = np.array([[0.2, 0.7, 0.1]])
    combined = combine(linear, lexical)
    expected = np.sqrt(linear * lexical)
    np.testing.assert_allclose(combined, expected / expected.sum(), rtol=1e-9)
    assert combined.argmax() == 1  # the view that is surer wins where they disagree


def test_a_model_with_the_view_saves_loads_and_cross_fits(
    encoder: Encoder, train_examples: list[Example], tmp_path: Path
) -> None:
    model = LocalModel.train(train_examples, encoder, lexical=True)
    assert model.lexical
    texts = ["is my top up going through?", "how much is the fee to take cash out"]
    model.save(tmp_path / "model")
    assert (tmp_path / "model" / "lexical.npz").is_file()
    loaded = LocalModel.load(tmp_path / "model", encoder=encoder)
    assert loaded.lexical
    for before, after in zip(model.predict(texts), loaded.predict(texts), strict=True):
        assert after.label == before.label
        np.testing.assert_allclose(after.probabilities, before.probabilities, rtol=1e-6)
        assert after.features == pytest.approx(before.features)
    cross_fit = model.cross_fit(folds=3)
    assert set(cross_fit.features) == set(LOCAL_FEATURES) | set(LEXICAL_FEATURES)
    assert len(cross_fit.gold) == len(train_examples)
    assert 0.5 < cross_fit.correct.mean() < 1.0
    # Without texts the view cannot score: refused, not silently dropped.
    with pytest.raises(ValueError, match="needs the texts"):
        model.score_vectors(encoder.encode(texts))
    # A model saved without the view over one with it leaves no stale lexical.npz behind.
    LocalModel.train(train_examples, encoder).save(tmp_path / "model")
    assert not (tmp_path / "model" / "lexical.npz").exists()
    assert not LocalModel.load(tmp_path / "model", encoder=encoder).lexical


def test_a_new_label_waits_for_retrain_then_the_view_learns_it(encoder: Encoder) -> None:
    model = LocalModel.train(WORDING, encoder, lexical=True)
    new = [
        f"my card {verb} at the shop {n}"
        for verb in ("was declined", "got declined")
        for n in range(6)
    ]
    model.add_examples(new, ["card_declined"] * len(new))
    assert "card_declined" in model.labels
    model.retrain()
    [prediction] = model.predict(["my card was declined at the shop"])
    assert prediction.label == "card_declined"
    assert prediction.features["lexical_probability"] > 0.5


def test_the_setting_is_a_boolean_and_reaches_the_saved_training_settings() -> None:
    assert LocalSettings.from_mapping({"lexical": True}).lexical is True
    assert LocalSettings().lexical is False
    assert json.loads(json.dumps(LocalSettings(lexical=True).to_json()))["lexical"] is True
    with pytest.raises(LocalSettingsError, match=r"local\.lexical must be true or false"):
        LocalSettings.from_mapping({"lexical": "yes"})


def test_terms_with_nul_long_tokens_and_accents_survive_saving(tmp_path: Path) -> None:
    """Numpy's fixed-width strings would drop a trailing NUL (breaking the vocabulary) and
    pad every term to the longest; terms are stored as UTF-8 bytes with offsets instead."""
    texts = ["ab\x00 x", "ab\x00 y", "ab z", "ab w", "café crème " + "k" * 5000, "café noir"]
    view = fit_lexical(texts, np.array([0, 0, 1, 1, 1, 0], dtype=np.intp), 2)
    arrays = view.to_arrays()
    assert sum(column.nbytes for column in arrays.values() if column.dtype == np.uint8) < 50_000
    np.savez(tmp_path / "view.npz", allow_pickle=False, **arrays)
    with np.load(tmp_path / "view.npz", allow_pickle=False) as stored:
        loaded = LexicalModel.from_arrays({name: stored[name] for name in stored.files})
    assert loaded.word_terms == view.word_terms and loaded.char_terms == view.char_terms
    queries = ["ab", "ab\x00", "café"]
    np.testing.assert_allclose(loaded.probabilities(queries), view.probabilities(queries))


def test_a_damaged_lexical_view_is_refused_when_loading(
    encoder: Encoder, train_examples: list[Example], tmp_path: Path
) -> None:
    from tiergate.classifier import ArtifactError

    LocalModel.train(train_examples[:60], encoder, lexical=True).save(tmp_path / "model")
    with np.load(tmp_path / "model" / "lexical.npz", allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["weights"] = arrays["weights"][:-1]
    np.savez(tmp_path / "model" / "lexical.npz", allow_pickle=False, **arrays)
    with pytest.raises(ArtifactError, match="damaged lexical view"):
        LocalModel.load(tmp_path / "model", encoder=encoder)
