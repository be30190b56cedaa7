"""``tiergate router train|eval``: the learned pre-call router on correctness records.

This module imports only argparse at start-up; the router, numpy and the encoder load when a
subcommand runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate.cli.errors import CliError, positive
from tiergate.cli.formatting import percent, say
from tiergate.cli.tables import render_table

if TYPE_CHECKING:
    from tiergate.encoders.base import Encoder
    from tiergate.precall import Record, Report, RouterArtifact, TrainOptions
    from tiergate.precall.evaluate import Figures

NONE = "none"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "router", help="train and evaluate a learned pre-call router (cheap or strong per prompt)"
    )
    commands = parser.add_subparsers(dest="router_command", metavar="SUBCOMMAND", required=True)

    train = commands.add_parser("train", help="train a router on DIR's train records and save it")
    _common(train)
    train.add_argument("--out", type=Path, required=True, help="folder to save the router in")
    train.set_defaults(handler=run_train)

    evaluate = commands.add_parser(
        "eval", help="train on DIR's train records, report on its test records"
    )
    _common(evaluate)
    evaluate.add_argument("--out", type=Path, help="also save the trained router here")
    evaluate.add_argument(
        "--all", action="store_true", help="show every candidate second opinion, not the chosen"
    )
    evaluate.set_defaults(handler=run_eval)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="folder of records: train.jsonl / *_train.jsonl (and test.jsonl / *_test.jsonl)",
    )
    parser.add_argument("--cheap", required=True, help="the cheap tier's model name in the records")
    parser.add_argument("--strong", required=True, help="the strong tier's model name")
    parser.add_argument(
        "--quality",
        type=_quality,
        default=0.95,
        help="keep at least this share of strong-only's accuracy (default %(default)s)",
    )
    parser.add_argument(
        "--confidence",
        type=_confidence,
        default=0.95,
        help="with this confidence, on new prompts (default %(default)s)",
    )
    parser.add_argument(
        "--second",
        action="append",
        metavar="MODEL",
        help="a second cheap model for the agreement cascade (repeat to compare several; "
        f"'{NONE}' for the pre-call router alone; default: every model in the records that "
        "costs no more than --cheap)",
    )
    parser.add_argument(
        "--encoder", default=None, help="encoder spec (default: the bundled all-MiniLM-L6-v2)"
    )
    parser.add_argument(
        "--silver",
        action="store_true",
        help="no gold labels: score every model by agreement with the strong model's answer",
    )
    parser.add_argument("--limit", type=_count, help="read at most N records from each file")
    parser.add_argument(
        "--bootstraps", type=_count, default=2000, help="bootstrap resamples (default %(default)s)"
    )
    parser.add_argument(
        "--sample-size",
        type=_sample_size,
        help="certify the quality measured on a fresh sample of M prompts instead of the "
        "expected quality (looser); in eval, 'test' means the test records' count",
    )
    parser.add_argument("--no-cache", action="store_true", help="do not cache prompt embeddings")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def _quality(text: str) -> float:
    value = positive(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"must be a share in (0, 1], got {text}")
    return value


def _confidence(text: str) -> float:
    value = positive(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text}")
    return value


def _sample_size(text: str) -> int | str:
    return text if text == "test" else _count(text)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def run_train(args: argparse.Namespace) -> int:
    if args.sample_size == "test":
        raise CliError("--sample-size test works with `router eval`; give a number here")
    artifact = _train(args, _encoder(args))
    artifact.save(args.out)
    if args.json:
        print(json.dumps(_train_json(artifact, args.out), indent=2))
    else:
        print(render_training(artifact))
        print(f"\nsaved: {args.out}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from tiergate.precall import LearnedRouter, evaluate

    test = _load(args, "test")
    if args.sample_size == "test":
        args.sample_size = len(test)
    encoder = _encoder(args)
    artifact = _train(args, encoder)
    if args.out is not None:
        artifact.save(args.out)
    router = LearnedRouter(artifact, encoder.get())
    report = evaluate(router, test)
    if args.json:
        print(json.dumps(report.json(), indent=2))
    else:
        print(render_report(report, show_all=args.all))
    return 0


class _LazyEncoder:
    """The encoder, loaded on first use: bad input fails before the model loads."""

    def __init__(self, spec: str) -> None:
        self._spec = spec
        self._loaded: Encoder | None = None

    def get(self) -> Encoder:
        if self._loaded is None:
            from tiergate.encoders import load_encoder

            self._loaded = load_encoder(self._spec)
        return self._loaded


def _encoder(args: argparse.Namespace) -> _LazyEncoder:
    from tiergate.encoders import DEFAULT_ENCODER

    return _LazyEncoder(args.encoder or DEFAULT_ENCODER)


def _load(args: argparse.Namespace, split: str) -> list[Record]:
    from tiergate.precall import load_split, with_silver_labels

    records = load_split(args.data, split, limit_per_file=args.limit)
    if args.silver:
        records = with_silver_labels(records, args.strong)
        if not records:
            raise CliError(f"{args.data}: no {split} record has an answer from {args.strong}")
    return records


def _options(args: argparse.Namespace) -> TrainOptions:
    from tiergate.precall import TrainOptions

    seconds: tuple[str, ...] | None = None
    if args.second:
        names = tuple(dict.fromkeys(args.second))
        seconds = () if names == (NONE,) else names
        if NONE in seconds:
            raise CliError(f"--second {NONE} cannot be combined with model names")
    return TrainOptions(
        cheap=args.cheap,
        strong=args.strong,
        quality=args.quality,
        confidence=args.confidence,
        seconds=seconds,
        bootstraps=args.bootstraps,
        sample_size=args.sample_size,
    )


def _train(args: argparse.Namespace, encoder: _LazyEncoder) -> RouterArtifact:
    from tiergate.encoders.static import cache_root
    from tiergate.precall import train_router
    from tiergate.precall.records import check_models

    options = _options(args)
    options.check()
    records = _load(args, "train")
    # Checked here too so that a misspelt model fails before the encoder loads.
    check_models(records, [options.cheap, options.strong], "training records")
    cache = None if args.no_cache else cache_root() / "precall"
    say(f"training on {len(records):,} records from {args.data} ...")
    return train_router(records, encoder.get(), options, cache=cache)


def _train_json(artifact: RouterArtifact, out: Path) -> dict[str, Any]:
    return {
        "router": str(out),
        "cheap": artifact.cheap,
        "strong": artifact.strong,
        "quality_target": artifact.quality,
        "confidence": artifact.confidence,
        "chosen": artifact.chosen,
        "trained_on": artifact.trained_on,
        "variants": [
            {
                "key": fit.variant.key,
                "second": fit.variant.second,
                "threshold": _threshold_json(fit.certificate.threshold),
                "train": fit.certificate.summary(),
            }
            for fit in artifact.fits
        ],
    }


def _threshold_json(value: float) -> float | None:
    return None if value == float("inf") else value


def _target_line(
    cheap: str, strong: str, quality: float, confidence: float, sample_size: int | None
) -> str:
    on = "on new prompts" if sample_size is None else f"measured on {sample_size:,} fresh prompts"
    return (
        f"Router: {cheap} -> {strong}; target: at least {quality:.0%} of strong-only's "
        f"accuracy {on}, with {confidence:.0%} confidence"
    )


def render_training(artifact: RouterArtifact) -> str:
    lines = [
        _target_line(
            artifact.cheap,
            artifact.strong,
            artifact.quality,
            artifact.confidence,
            artifact.fit().certificate.sample_size,
        ),
        f"Trained on {artifact.trained_on:,} prompts (cross-fitted figures)",
        "",
    ]
    rows = []
    for fit in artifact.fits:
        c = fit.certificate
        rows.append(
            [
                _variant_label(fit.variant.second),
                "never" if c.threshold == float("inf") else f"{c.threshold:.3f}",
                percent(c.cheap_side_share),
                percent(c.saving),
                percent(c.quality),
                percent(c.quality_lower),
                "<- chosen" if fit.variant.key == artifact.chosen else "",
            ]
        )
    lines.append(
        render_table(
            ["variant", "threshold", "cheap side", "saving", "quality", "bound", ""],
            rows,
            numeric=[False, True, True, True, True, True, False],
        )
    )
    return "\n".join(lines)


def _variant_label(second: str | None) -> str:
    return "pre-call router" if second is None else f"pre-call + cascade ({second})"


def render_report(report: Report, *, show_all: bool = False) -> str:
    chosen = report.row(report.chosen)
    second = chosen.second or _best_second(report)
    strong_cost = report.mean_cost[report.strong]
    lines = [
        _target_line(
            report.cheap, report.strong, report.quality, report.confidence, report.sample_size
        ),
        f"Thresholds fixed on {report.train_prompts:,} train prompts; "
        f"figures on {report.test_prompts:,} test prompts the router never saw",
        "Mean cost per call: "
        + ", ".join(
            f"{model} ${cost:.6f} ({cost / strong_cost:.1%} of strong)"
            for model, cost in report.mean_cost.items()
            if model in (report.cheap, report.strong, second) or show_all
        ),
        "",
    ]
    rows = []
    for row in report.rows:
        if not show_all and row.second not in (None, second):
            continue
        train = (
            [percent(row.train.saving), percent(row.train.quality_lower)]
            if row.train is not None
            else ["", ""]
        )
        mark = "<- chosen" if row.key == report.chosen else ""
        rows.append([*_figures_cells(row.label, row.figures), *train, mark])
        if row.key == report.chosen and row.random is not None:
            rows.append([*_figures_cells("random, same share to strong", row.random), "", "", ""])
    rows.append(
        [
            *_figures_cells(
                "random, share reaching the target (yardstick)", report.random_at_target
            ),
            "",
            "",
            "",
        ]
    )
    lines.append(
        render_table(
            [*FIGURES, "train: saving", "bound", ""],
            rows,
            numeric=[False, *[True] * 7, False],
        )
    )
    if chosen.groups:
        lines += [
            "",
            "The chosen variant by group:",
            render_table(
                ["group", *FIGURES[1:]],
                [_figures_cells(name, figures) for name, figures in chosen.groups.items()],
                numeric=[False, *[True] * 5],
                indent=2,
            ),
        ]
    lines += [
        "",
        "to strong: share answered by the strong model (sent straight or escalated); "
        "bound: the certified lower bound on quality vs strong at the threshold.",
        "The chosen variant has the largest certified saving on the train prompts; "
        "the agreement cascade has no threshold and no certificate.",
    ]
    return "\n".join(lines)


FIGURES = ["policy", "to strong", "cheap calls", "saving", "quality vs strong", "accuracy"]


def _figures_cells(label: str, figures: Figures) -> list[str]:
    return [
        label,
        percent(figures.to_strong),
        f"{figures.cheap_calls:.2f}",
        percent(figures.saving),
        percent(figures.quality_vs_strong),
        percent(figures.accuracy),
    ]


def _best_second(report: Report) -> str | None:
    cascades = [r for r in report.rows if r.certified and r.second is not None and r.train]
    if not cascades:
        return None
    return max(cascades, key=lambda r: r.train.saving if r.train else 0.0).second
