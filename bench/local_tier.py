"""The local tier's encoders, runtimes and levers side by side: speed, training time, accuracy.

One row per candidate, all measured in this run on BANKING77 (train -> test):

- p50/p99 ms: one request (encode + classify + neighbours for one text), 200 requests;
- texts/s @64: ``predict`` on batches of 64 test texts, as they come (unsorted); encoder
  only /s: the encoder alone on the same batches (what the classifier and neighbours add is
  the difference);
- conc. texts/s and CPU ms/text: 16 client threads each sending one text at a time (1,024
  texts), directly or through the micro-batcher (``encoders.batching``); CPU time is the
  process's, so a runtime that spreads over both cores pays for it here;
- train s: building the model (export, fine-tuning and its cross-fit included; a model reused
  from ``--artifacts`` shows the time recorded when it was built);
- test acc, accepted @1% (+ its accuracy): the local tier alone at a 1% error budget, 95%
  confidence, calibrated out-of-fold on train (the honest cross-fit for a fine-tuned encoder),
  or with ``--calibration holdout`` trained on 80% of train and calibrated on the other 20%;
- CLINC150 (``--clinc-for``): in-scope accepted @1% and out-of-scope test messages accepted.

Ratios are against the first row. Run::

    .venv/bin/python bench/local_tier.py --cache /tmp/emb --artifacts /tmp/local-artifacts \\
        [--candidates torch,onnx-fp32,onnx-int8,...] [--budget-for onnx-int8,...] \\
        [--clinc-for onnx-int8,onnx-int8-finetuned]

MiniLM against all-mpnet-base-v2 for speed alone, on 1,000 test texts (a few minutes)::

    .venv/bin/python bench/local_tier.py --candidates onnx-int8,mpnet-onnx-int8 \\
        --speed-only onnx-int8,mpnet-onnx-int8 --texts 1000 --requests 50
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from local_budgets import Builder, banking77, cached_encode, clinc150
from tiergate.classifier import LocalModel
from tiergate.classifier.settings import FinetuneSettings, LocalSettings
from tiergate.datasets import Example, load_dataset, stratified_split
from tiergate.encoders import StaticEncoder, load_encoder
from tiergate.encoders.batching import MicroBatcher

DATA = (
    Path(os.environ["TIERGATE_DATA"]) / "banking77"
    if "TIERGATE_DATA" in os.environ
    else Path(__file__).parents[1] / "examples" / "banking77" / "data"
)
BATCH = 64
CLIENTS = 16
CONCURRENT_TEXTS = 1024


@dataclass(frozen=True)
class Candidate:
    name: str
    settings: LocalSettings | None  # None: a plain encoder spec, trained on cached vectors
    spec: str = ""
    batched: bool = False  # serve through the micro-batcher


def candidates(finetune_pairs: int) -> dict[str, Candidate]:
    finetuned = LocalSettings(finetune=FinetuneSettings(max_pairs=finetune_pairs))
    return {
        "torch": Candidate("MiniLM torch (sentence-transformers)", None, "all-MiniLM-L6-v2"),
        "onnx-fp32": Candidate("MiniLM onnx fp32", LocalSettings(quantize="none")),
        "onnx-int8": Candidate("MiniLM onnx int8", LocalSettings()),
        "onnx-int8-batched": Candidate(
            "MiniLM onnx int8 + micro-batcher", LocalSettings(), batched=True
        ),
        "onnx-int8-finetuned": Candidate(
            f"MiniLM fine-tuned ({finetune_pairs} pairs) onnx int8", finetuned
        ),
        "onnx-int8-finetuned-batched": Candidate("  same + micro-batcher", finetuned, batched=True),
        "static": Candidate("static distilled 256d", None, "static:all-MiniLM-L6-v2"),
        # all-mpnet-base-v2 from its PyPI parts (tiergate/data/encoders.yaml), 768d, 110M params
        "mpnet-onnx-fp32": Candidate(
            "mpnet onnx fp32", LocalSettings(encoder="all-mpnet-base-v2", quantize="none")
        ),
        "mpnet-onnx-int8": Candidate("mpnet onnx int8", LocalSettings(encoder="all-mpnet-base-v2")),
    }


ACCURACY_COLUMNS = (
    "train_s",
    "accuracy",
    "accepted",
    "accepted_accuracy",
    "clinc_accepted",
    "clinc_oos",
)


@dataclass
class Row:
    name: str
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    texts_per_s: float = 0.0
    encode_per_s: float = 0.0
    concurrent_per_s: float = 0.0
    cpu_ms_per_text: float = 0.0
    train_s: float | None = None
    accuracy: float | None = None
    accepted: float | None = None
    accepted_accuracy: float | None = None
    clinc_accepted: float | None = None
    clinc_oos: float | None = None


def per_label(examples: list[Example], count: int) -> list[Example]:
    taken: dict[str, int] = {}
    chosen = []
    for example in examples:
        if taken.get(example.label, 0) < count:
            taken[example.label] = taken.get(example.label, 0) + 1
            chosen.append(example)
    return chosen


def build(builder: Builder, train: list[Example], calibration: str) -> tuple[LocalModel, float]:
    """The model a row serves: the one its budget columns are measured on."""
    started = time.perf_counter()
    if calibration == "speed-only":
        model = builder.train(
            "banking77-speed", train, lambda: builder.encode([e.text for e in train])
        )
    elif calibration == "holdout":
        # As local_budgets.banking77 builds it, so the budget step reuses this model.
        split = stratified_split(train, calibration=0.2, seed=0)
        model = builder.train(
            "banking77-holdout",
            split.train,
            lambda: builder.encode([e.text for e in split.train]),
            cross_fit=False,
        )
    else:
        model = builder.train("banking77", train, lambda: builder.encode([e.text for e in train]))
    elapsed = time.perf_counter() - started
    recorded = model.training.get("seconds", {}).get("total_s")
    return model, float(recorded) if recorded is not None else elapsed


def speed(model: LocalModel, texts: list[str], requests: int, row: Row) -> None:
    model.predict(texts[:8])  # warm up lazy initialisation before timing
    latencies = []
    for text in texts[:requests]:
        tick = time.perf_counter()
        model.predict([text])
        latencies.append(time.perf_counter() - tick)
    quantiles = statistics.quantiles(latencies, n=100)
    row.p50_ms, row.p99_ms = quantiles[49] * 1000, quantiles[98] * 1000
    tick = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        model.predict(texts[start : start + BATCH])
    row.texts_per_s = len(texts) / (time.perf_counter() - tick)
    encoder = model.encoder.encoder if isinstance(model.encoder, MicroBatcher) else model.encoder
    tick = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        encoder.encode(texts[start : start + BATCH])
    row.encode_per_s = len(texts) / (time.perf_counter() - tick)
    row.concurrent_per_s, row.cpu_ms_per_text = concurrent(model, texts[:CONCURRENT_TEXTS])


def concurrent(model: LocalModel, texts: list[str]) -> tuple[float, float]:
    """Texts/s and process CPU ms per text with CLIENTS threads sending one text at a time."""
    feed = iter(texts)
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                text = next(feed, None)
            if text is None:
                return
            model.predict([text])

    cpu, wall = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        for future in [pool.submit(client) for _ in range(CLIENTS)]:
            future.result()
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    return len(texts) / wall, cpu / len(texts) * 1000


def budget(builder: Builder, row: Row, clinc: bool, calibration: str) -> None:
    rows = banking77(builder, calibration, 0.05)
    first = next(r for r in rows if r["budget"] == 0.01 and r["thresholds"] == "global")
    row.accepted = _float(first["accepted_share"])
    row.accepted_accuracy = _float(first["accepted_accuracy"])
    if clinc:
        rows = clinc150(builder, "holdout", False, 0.05)
        first = next(r for r in rows if r["budget"] == 0.01 and r["thresholds"] == "global")
        row.clinc_accepted = _float(first["accepted_share"])
        row.clinc_oos = _float(first["oos_accepted"])


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))


def print_table(rows: Sequence[Row]) -> None:
    base = rows[0]

    def pct(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}%}"

    header = [
        "candidate",
        "p50 ms",
        "p99 ms",
        "texts/s @64",
        "x base",
        "encoder only /s",
        "conc. texts/s",
        "CPU ms/text",
        "train s",
        "test acc",
        "accepted @1%",
        "acc. accuracy",
        "CLINC in-scope @1%",
        "CLINC OOS acc.",
    ]
    cells = [header]
    for row in rows:
        cells.append(
            [
                row.name,
                f"{row.p50_ms:.2f}",
                f"{row.p99_ms:.2f}",
                f"{row.texts_per_s:,.0f}",
                f"{row.texts_per_s / base.texts_per_s:.1f}x",
                f"{row.encode_per_s:,.0f}",
                f"{row.concurrent_per_s:,.0f}",
                f"{row.cpu_ms_per_text:.2f}",
                "-" if row.train_s is None else f"{row.train_s:.0f}",
                pct(row.accuracy, 2),
                pct(row.accepted),
                pct(row.accepted_accuracy, 2),
                pct(row.clinc_accepted),
                pct(row.clinc_oos),
            ]
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    for index, line in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Compare local-tier candidates on BANKING77.")
    parser.add_argument("--requests", type=int, default=200, help="single requests to time")
    parser.add_argument(
        "--texts", type=int, default=None, help="test texts timed in batches (default: all)"
    )
    parser.add_argument(
        "--candidates",
        default="torch,onnx-fp32,onnx-int8,onnx-int8-batched,onnx-int8-finetuned,"
        "onnx-int8-finetuned-batched,static",
    )
    parser.add_argument("--finetune-pairs", type=int, default=2000)
    parser.add_argument(
        "--calibration",
        choices=("crossfit", "holdout"),
        default="crossfit",
        help="BANKING77 calibration: out-of-fold on all of train (with a fine-tuned encoder, "
        "folds + 1 fine-tunes), or train on 80%% and calibrate on the other 20%% (one)",
    )
    parser.add_argument(
        "--budget-for",
        default=None,
        help="candidates that get the accuracy-at-budget columns (default: all; '' for none)",
    )
    parser.add_argument(
        "--clinc-for", default="", help="candidates that get the CLINC150 columns too"
    )
    parser.add_argument(
        "--speed-only",
        default="",
        help="candidates measured for speed only, on a model trained on 10 examples per label "
        "(encoding dominates a request; the classifier's size barely matters)",
    )
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache directory")
    parser.add_argument("--artifacts", type=Path, default=None, help="built models, reused")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="JSON file keeping each candidate's accuracy columns; a later run with the same "
        "artifacts reuses them and re-measures only speed",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    train = load_dataset(DATA / "banking77_train.csv")
    test = load_dataset(DATA / "banking77_test.csv")
    texts = [e.text for e in test]
    timed = texts[: args.texts]
    table = candidates(args.finetune_pairs)
    rows: list[Row] = []
    measured: dict[LocalSettings | str, Row] = {}
    stored: dict[str, dict[str, float | None]] = (
        json.loads(args.results.read_text())
        if args.results is not None and args.results.is_file()
        else {}
    )
    for key in args.candidates.split(","):
        candidate = table[key]
        if candidate.settings is None:
            encoder = load_encoder(candidate.spec)
            if isinstance(encoder, StaticEncoder):
                encoder = StaticEncoder.from_source()  # the distilled table, built once
            builder = Builder(encoder, cached_encode(encoder, args.cache))
        else:
            builder = Builder(None, None, candidate.settings, args.artifacts)
        speed_only = key in args.speed_only.split(",")
        if speed_only:
            model, _ = build(builder, per_label(train, 10), "speed-only")
            train_s = None
        else:
            model, train_s = build(builder, train, args.calibration)
        served = model.with_encoder(MicroBatcher(model.encoder)) if candidate.batched else model
        row = Row(candidate.name, train_s=train_s)
        speed(served, timed, args.requests, row)
        same = measured.get(candidate.settings or candidate.spec)
        if same is not None:  # the same model served another way: same accuracy figures
            row = replace(
                row,
                train_s=same.train_s,
                accuracy=same.accuracy,
                accepted=same.accepted,
                accepted_accuracy=same.accepted_accuracy,
                clinc_accepted=same.clinc_accepted,
                clinc_oos=same.clinc_oos,
            )
        elif speed_only:
            pass
        elif key in stored:
            for name, value in stored[key].items():
                setattr(row, name, value)
            measured[candidate.settings or candidate.spec] = row
        else:
            predictions = model.predict(texts)
            row.accuracy = float(
                np.mean([p.label == e.label for p, e in zip(predictions, test, strict=True)])
            )
            wanted = args.budget_for.split(",") if args.budget_for is not None else [key]
            if key in wanted:
                budget(builder, row, key in args.clinc_for.split(","), args.calibration)
            measured[candidate.settings or candidate.spec] = row
            if args.results is not None:
                stored[key] = {name: getattr(row, name) for name in ACCURACY_COLUMNS}
                args.results.write_text(json.dumps(stored, indent=2))
        if isinstance(served.encoder, MicroBatcher):
            served.encoder.close()
        rows.append(row)
        print(f"measured {candidate.name}", file=sys.stderr, flush=True)
    print(
        f"BANKING77: train {len(train)}, test {len(test)} ({len(timed)} timed), "
        f"calibration {args.calibration}; "
        f"{os.cpu_count()} CPU cores; "
        f"concurrency {CLIENTS} clients x 1 text"
    )
    print_table(rows)


if __name__ == "__main__":
    main()
