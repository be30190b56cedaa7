"""Encoders for the local tier compared: latency, throughput, training time, accuracy.

For each encoder: train the local model on BANKING77 train (encoding included), then measure
single-request latency (encode + classify + neighbours for one text, p50/p99), batched
throughput (texts per second at batch 64), test accuracy, and the share the local tier accepts
at a 1% error budget (calibrated out-of-fold on train, thresholds by Clopper-Pearson/LTT).
Ratios are against the first encoder.

Run::

    .venv/bin/python bench/local_tier.py [--requests 200] [--skip-budget]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiergate.calibration import Calibrator, fit_threshold
from tiergate.classifier import LOCAL_FEATURES, LocalModel
from tiergate.datasets import Example, load_dataset
from tiergate.encoders import Encoder, SentenceTransformerEncoder, StaticEncoder

# The copy shipped with the example route; TIERGATE_DATA=DIR points at another banking77/ parent.
DATA = (
    Path(os.environ["TIERGATE_DATA"]) / "banking77"
    if "TIERGATE_DATA" in os.environ
    else Path(__file__).parents[1] / "examples" / "banking77" / "data"
)
BATCH = 64


@dataclass(frozen=True)
class Measured:
    name: str
    p50_ms: float
    p99_ms: float
    texts_per_s: float
    train_s: float
    accuracy: float
    accepted_at_1pct: float | None
    accepted_accuracy: float | None


def candidates() -> list[tuple[str, Callable[[], Encoder]]]:
    return [
        ("MiniLM-L6 (default)", lambda: SentenceTransformerEncoder()),
        ("MiniLM-L6 max_seq 32", lambda: SentenceTransformerEncoder(max_seq_length=32)),
        ("static distilled 256d", lambda: StaticEncoder.from_source()),
    ]


def measure(
    label: str,
    encoder: Encoder,
    train: list[Example],
    test: list[Example],
    requests: int,
    with_budget: bool,
) -> Measured:
    started = time.perf_counter()
    model = LocalModel.train(train, encoder)
    train_s = time.perf_counter() - started

    texts = [e.text for e in test]
    model.predict(texts[:8])  # warm up lazy initialisation before timing
    latencies = []
    for text in texts[:requests]:
        tick = time.perf_counter()
        model.predict([text])
        latencies.append(time.perf_counter() - tick)
    quantiles = statistics.quantiles(latencies, n=100)

    tick = time.perf_counter()
    predictions = []
    for start in range(0, len(texts), BATCH):
        predictions.extend(model.predict(texts[start : start + BATCH]))
    throughput = len(texts) / (time.perf_counter() - tick)
    correct = np.array([p.label == e.label for p, e in zip(predictions, test, strict=True)])

    accepted_share = accepted_accuracy = None
    if with_budget:
        folds = model.cross_fit()
        calibrator = Calibrator.fit({n: folds.features[n] for n in LOCAL_FEATURES}, folds.correct)
        result = fit_threshold(calibrator.predict(folds.features), folds.correct, 0.01)
        _, features = model.features(texts)
        accepted = result.accepts(calibrator.predict(features))
        accepted_share = float(accepted.mean())
        accepted_accuracy = float(correct[accepted].mean()) if accepted.any() else None
    return Measured(
        name=label,
        p50_ms=quantiles[49] * 1000,
        p99_ms=quantiles[98] * 1000,
        texts_per_s=throughput,
        train_s=train_s,
        accuracy=float(correct.mean()),
        accepted_at_1pct=accepted_share,
        accepted_accuracy=accepted_accuracy,
    )


def print_table(rows: Sequence[Measured]) -> None:
    base = rows[0]
    header = [
        "encoder",
        "p50 ms",
        "p99 ms",
        "texts/s @64",
        "x base",
        "train s",
        "test acc",
        "accepted @1%",
        "acc. accuracy",
    ]
    cells = [header]
    for row in rows:
        cells.append(
            [
                row.name,
                f"{row.p50_ms:.2f} ({row.p50_ms / base.p50_ms:.2f}x)",
                f"{row.p99_ms:.2f}",
                f"{row.texts_per_s:,.0f}",
                f"{row.texts_per_s / base.texts_per_s:.1f}x",
                f"{row.train_s:.1f}",
                f"{row.accuracy:.2%}",
                "-" if row.accepted_at_1pct is None else f"{row.accepted_at_1pct:.1%}",
                "-" if row.accepted_accuracy is None else f"{row.accepted_accuracy:.2%}",
            ]
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    for index, line in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Compare local-tier encoders on BANKING77.")
    parser.add_argument("--requests", type=int, default=200, help="single requests to time")
    parser.add_argument("--skip-budget", action="store_true", help="skip the 1%% budget column")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    train = load_dataset(DATA / "banking77_train.csv")
    test = load_dataset(DATA / "banking77_test.csv")
    rows = []
    for label, build in candidates():
        rows.append(measure(label, build(), train, test, args.requests, not args.skip_budget))
        print(f"measured {label}", flush=True)
    print(f"BANKING77: train {len(train)}, test {len(test)}; {os.cpu_count()} CPU cores")
    print_table(rows)


if __name__ == "__main__":
    main()
