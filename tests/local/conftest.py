"""Shared fixtures: the bundled MiniLM loaded once, a small real BANKING77 sample."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tiergate.classifier import LocalModel
from tiergate.datasets import Example, load_dataset
from tiergate.encoders import Encoder, SentenceTransformerEncoder

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return SentenceTransformerEncoder()


@pytest.fixture(scope="session")
def train_examples() -> list[Example]:
    return load_dataset(DATA / "banking77_sample_train.csv")


@pytest.fixture(scope="session")
def test_examples() -> list[Example]:
    return load_dataset(DATA / "banking77_sample_test.csv")


@pytest.fixture(scope="session")
def trained(encoder: Encoder, train_examples: list[Example]) -> LocalModel:
    """A model shared by read-only tests; tests that mutate a model train their own."""
    return LocalModel.train(train_examples, encoder)


@pytest.fixture(scope="session")
def onnx_dirs(encoder: Encoder, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bundled MiniLM exported once as float32 and once as int8 (a few seconds each)."""
    from tiergate.encoders import SentenceTransformerEncoder
    from tiergate.encoders.export import export_onnx

    assert isinstance(encoder, SentenceTransformerEncoder)
    root = tmp_path_factory.mktemp("onnx")
    return {
        quantize: export_onnx(
            encoder.transformer, root / quantize, source="all-MiniLM-L6-v2", quantize=quantize
        )
        for quantize in ("none", "int8")
    }
