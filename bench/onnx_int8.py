"""ONNX encoders as ``tiergate train`` exports them: int8 against float32, fidelity and speed.

Each encoder is exported as ``export_onnx`` does at train time (``max_seq_length`` 128), in
float32 and in int8 (per-channel scales, with the nodes its ``encoders.yaml`` row keeps in
float32); an encoder whose row keeps some also gets an int8 export quantised whole, to show what
keeping them buys. All exports encode the same BANKING77 test texts in batches of 64,
interleaved batch by batch so a shared machine's load falls on all of them alike. Printed per
export: the encoder-only rate, its ratio to the first row, and the row-wise cosine of its
vectors to the same encoder's float32 ones (mean, 1st percentile, minimum). Run::

    .venv/bin/python bench/onnx_int8.py [--encoders all-MiniLM-L6-v2,all-mpnet-base-v2]
        [--texts 1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tiergate.datasets import load_dataset
from tiergate.encoders import Encoder, SentenceTransformerEncoder, load_encoder
from tiergate.encoders.export import _quantize, export_onnx
from tiergate.encoders.onnx_encoder import CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE
from tiergate.encoders.packaged import catalogue

DATA = Path(__file__).parents[1] / "examples" / "banking77" / "data"
BATCH = 64


def exports(name: str, root: Path) -> dict[str, Path]:
    """int8 as trained, float32, and int8 quantised whole where the row keeps nodes float."""
    transformer = SentenceTransformerEncoder(name).transformer
    made = {
        label: export_onnx(transformer, root / quantize, source=name, quantize=quantize)
        for label, quantize in (("int8", "int8"), ("float32", "none"))
    }
    found = catalogue().find(name)
    if found is not None and found[1].int8_keep_float:
        whole = root / "whole"
        whole.mkdir()
        for file in (TOKENIZER_FILE, CONFIG_FILE):
            shutil.copy(made["float32"] / file, whole / file)
        _quantize(made["float32"] / MODEL_FILE, whole / MODEL_FILE, [])
        made["int8 quantised whole"] = whole
    return made


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoders", default="all-MiniLM-L6-v2,all-mpnet-base-v2")
    parser.add_argument("--texts", type=int, default=1000)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts = [example.text for example in load_dataset(DATA / "banking77_test.csv")]
    # Evenly spaced, so the sample spans the labels (the file is ordered by label).
    texts = texts[:: max(1, len(texts) // args.texts)][: args.texts]
    with tempfile.TemporaryDirectory() as scratch:
        encoders: dict[tuple[str, str], Encoder] = {}
        for name in args.encoders.split(","):
            for label, directory in exports(name, Path(scratch) / name).items():
                encoders[name, label] = load_encoder(f"onnx:{directory}")
        spent = dict.fromkeys(encoders, 0.0)
        vectors: dict[tuple[str, str], list[np.ndarray]] = {key: [] for key in encoders}
        for encoder in encoders.values():
            encoder.encode(texts[:BATCH])  # warm up
        for start in range(0, len(texts), BATCH):
            batch = texts[start : start + BATCH]
            for key, encoder in encoders.items():
                tick = time.perf_counter()
                vectors[key].append(encoder.encode(batch))
                spent[key] += time.perf_counter() - tick
    print(
        f"{len(texts)} BANKING77 test texts, batches of {BATCH}, exports interleaved; "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(f"{'encoder':<20} {'ONNX':<22} {'texts/s':>8} {'x first':>8} {'cosine to float32':>30}")
    first = len(texts) / next(iter(spent.values()))
    for (name, label), seconds in spent.items():
        rate = len(texts) / seconds
        cosine = np.sum(np.vstack(vectors[name, label]) * np.vstack(vectors[name, "float32"]), 1)
        spread = (
            f"mean {cosine.mean():.4f} p1 {np.percentile(cosine, 1):.4f} min {cosine.min():.4f}"
        )
        print(f"{name:<20} {label:<22} {rate:>8.1f} {rate / first:>7.2f}x {spread:>30}")


if __name__ == "__main__":
    main()
