"""A tiny deterministic encoder and synthetic records for the router's unit tests.

The encoder seam is a protocol; this one hashes words into 64 dimensions so unit tests run in
milliseconds. The real MiniLM runs in the command-line tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from tiergate.encoders.base import Vectors, l2_normalise
from tiergate.precall.records import Outcome, Record


class WordHashEncoder:
    name = "test:word-hash"
    dimension = 64

    def encode(self, texts: Sequence[str]) -> Vectors:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                bucket = hashlib.sha256(word.encode()).digest()[0] % self.dimension
                vectors[row, bucket] += 1.0
        return l2_normalise(vectors)


def synthetic_records(n: int, seed: int = 0) -> list[Record]:
    """Prompts about easy or hard topics; the cheap model fails most hard ones.

    A second cheap model agrees with the cheap one when the cheap one is right, and mostly
    disagrees when it is wrong, as two independent models tend to.
    """
    rng = np.random.default_rng(seed)
    records = []
    for index in range(n):
        hard = bool(rng.random() < 0.4)
        topic = rng.choice(["quantum", "tensor", "proof"] if hard else ["cat", "sun", "apple"])
        prompt = f"Question {index}: tell me about the {topic} please.\nA) yes\nB) no"
        cheap_right = bool(rng.random() < (0.3 if hard else 0.97))
        strong_right = bool(rng.random() < 0.95)
        second_agrees = cheap_right or bool(rng.random() < 0.2)
        cheap_answer = "A" if cheap_right else "B"
        models = {
            "cheap": Outcome(0.001, float(cheap_right), cheap_answer),
            "strong": Outcome(0.010, float(strong_right), "A" if strong_right else "B"),
            "second": Outcome(0.0008, None, cheap_answer if second_agrees else "C"),
            "pricey": Outcome(0.009, None, cheap_answer),
        }
        records.append(Record(prompt, models, id=f"q{index}", group="hard" if hard else "easy"))
    return records
