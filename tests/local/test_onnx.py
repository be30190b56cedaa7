"""The ONNX runtime: export equals torch, int8 stays close, serving never imports torch."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tiergate.datasets import Example
from tiergate.encoders import Encoder, OnnxEncoder, load_encoder
from tiergate.encoders.onnx_encoder import CONFIG_FILE, EncoderFilesError


def test_float32_export_gives_torchs_vectors(
    encoder: Encoder, onnx_dirs: dict[str, Path], test_examples: list[Example]
) -> None:
    # Up to ~100 tokens: within both models' max_seq_length (128 exported, 256 in torch).
    texts = [e.text for e in test_examples] + ["", "a much longer message " * 25]
    exported = OnnxEncoder(onnx_dirs["none"])
    np.testing.assert_allclose(exported.encode(texts), encoder.encode(texts), atol=1e-5)
    assert exported.dimension == 384
    assert load_encoder(exported.name).name == exported.name


def test_int8_export_stays_close_to_float32_and_is_smaller(
    onnx_dirs: dict[str, Path], test_examples: list[Example]
) -> None:
    texts = [e.text for e in test_examples]
    reference = OnnxEncoder(onnx_dirs["none"]).encode(texts)
    quantised = OnnxEncoder(onnx_dirs["int8"]).encode(texts)
    cosines = (reference * quantised).sum(axis=1)
    assert cosines.mean() > 0.98 and cosines.min() > 0.95
    np.testing.assert_allclose(np.linalg.norm(quantised, axis=1), 1.0, rtol=1e-5)
    size = {name: (path / "model.onnx").stat().st_size for name, path in onnx_dirs.items()}
    assert size["int8"] < size["none"] / 3


def test_float32_vectors_do_not_depend_on_batch_mates(
    onnx_dirs: dict[str, Path], test_examples: list[Example]
) -> None:
    exported = OnnxEncoder(onnx_dirs["none"])
    texts = [e.text for e in test_examples[:20]]
    alone = np.vstack([exported.encode([text]) for text in texts])
    np.testing.assert_allclose(exported.encode(texts), alone, atol=1e-6)


def test_a_directory_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EncoderFilesError, match=f"no {CONFIG_FILE}"):
        OnnxEncoder(tmp_path)


def test_serving_an_onnx_encoder_never_imports_torch(onnx_dirs: dict[str, Path]) -> None:
    script = (
        "import sys\n"
        "from tiergate.encoders import load_encoder\n"
        f"vectors = load_encoder({('onnx:' + str(onnx_dirs['int8']))!r}).encode(['lost card'])\n"
        "assert vectors.shape == (1, 384)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'sentence_transformers')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_encoding_reports_batch_by_batch_with_the_vectors_of_one_call(
    onnx_dirs: dict[str, Path], test_examples: list[Example]
) -> None:
    """Progress through a long encode costs no accuracy: int8 vectors depend on their batch
    mates, so the texts are still encoded in one call, which reports each batch as it ends."""
    from tiergate.encoders.base import Vectors, encode_reporting

    exported = OnnxEncoder(onnx_dirs["int8"], batch_size=16)
    texts = [e.text for e in test_examples[:70]]
    done: list[int] = []
    vectors = encode_reporting(exported, texts, done.append)
    assert done == [16, 16, 16, 16, 6]
    np.testing.assert_array_equal(vectors, exported.encode(texts))

    class Plain:  # an encoder that cannot tell how far it has got
        name, dimension = "plain", 1

        def encode(self, texts: Sequence[str]) -> Vectors:
            return np.ones((len(texts), 1), dtype=np.float32)

    done.clear()
    assert encode_reporting(Plain(), texts, done.append).shape == (70, 1)
    assert done == [70]
