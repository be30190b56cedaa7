"""How far int8 quantisation bends an encoder's vectors: cosine of int8 to float32 ONNX vectors.

Each encoder is exported twice as ``tiergate train`` exports it (``export_onnx``, float32 and
int8 with per-channel scales, ``max_seq_length`` 128) and both encode the same BANKING77 test
texts; printed per encoder: mean, 1st percentile and minimum of the row-wise cosine. Run::

    .venv/bin/python bench/onnx_int8_cosine.py [--encoders all-MiniLM-L6-v2,all-mpnet-base-v2]
        [--texts 1000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tiergate.datasets import load_dataset
from tiergate.encoders import SentenceTransformerEncoder, load_encoder
from tiergate.encoders.export import export_onnx

DATA = Path(__file__).parents[1] / "examples" / "banking77" / "data"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoders", default="all-MiniLM-L6-v2,all-mpnet-base-v2")
    parser.add_argument("--texts", type=int, default=1000)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts = [example.text for example in load_dataset(DATA / "banking77_test.csv")]
    # Evenly spaced, so the sample spans the labels (the file is ordered by label).
    texts = texts[:: max(1, len(texts) // args.texts)][: args.texts]
    print(f"{len(texts)} BANKING77 test texts; cosine(int8, float32) per text")
    print(f"{'encoder':<20} {'mean':>7} {'p1':>7} {'min':>7} {'export+encode s':>16}")
    for name in args.encoders.split(","):
        transformer = SentenceTransformerEncoder(name).transformer
        vectors = {}
        with tempfile.TemporaryDirectory() as scratch:
            tick = time.perf_counter()
            for quantize in ("none", "int8"):
                directory = export_onnx(
                    transformer, Path(scratch) / quantize, source=name, quantize=quantize
                )
                vectors[quantize] = load_encoder(f"onnx:{directory}").encode(texts)
            seconds = time.perf_counter() - tick
        cosine = np.sum(vectors["none"] * vectors["int8"], axis=1)
        print(
            f"{name:<20} {cosine.mean():>7.4f} {np.percentile(cosine, 1):>7.4f} "
            f"{cosine.min():>7.4f} {seconds:>16.0f}"
        )


if __name__ == "__main__":
    main()
