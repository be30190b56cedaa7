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
