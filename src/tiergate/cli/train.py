"""``tiergate train ROUTE``: train the route's local model and save it as an artifact."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

from tiergate.cli.formatting import say


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("train", help="train a route's local model")
    parser.add_argument("route", type=Path, help="route file (or its folder)")
    parser.add_argument(
        "--encoder", help="sentence encoder spec (default: the route's local.encoder)"
    )
    parser.add_argument(
        "--runtime",
        choices=("onnx", "torch"),
        help="how the encoder runs when serving (default: the route's local.runtime)",
    )
    parser.add_argument(
        "--finetune",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fine-tune the encoder on the training data (default: the route's local.finetune)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tiergate.classifier.settings import FinetuneSettings
    from tiergate.classifier.training import build_local_model
    from tiergate.routing.route import LOCAL, load_route
    from tiergate.routing.runtime import check_labels, local_dir, route_data

    route = load_route(args.route)
    if LOCAL not in route.tiers and route.few_shot == 0:
        # Neither a local tier nor few-shot neighbours: no local model would ever be used.
        print(
            f"route {route.name!r} uses no local model (no local tier, few_shot: 0): "
            "nothing to train"
        )
        return 0
    data = route_data(route)
    check_labels(route, data.train, str(route.train_data))
    settings = route.local
    if getattr(args, "encoder", None):
        settings = dataclasses.replace(settings, encoder=args.encoder)
    if getattr(args, "runtime", None):
        settings = dataclasses.replace(settings, runtime=args.runtime)
    finetune = getattr(args, "finetune", None)
    if finetune is not None:
        chosen = (settings.finetune or FinetuneSettings()) if finetune else None
        settings = dataclasses.replace(settings, finetune=chosen)
    how = f"{settings.encoder}, {settings.runtime}"
    if settings.runtime == "onnx" and not settings.static:
        how += f" {settings.quantize}"
    if settings.finetune is not None:
        how += f", fine-tuned ({settings.finetune.folds}-fold cross-fitted)"
    say(f"training the local model of {route.name!r} on {len(data.train):,} examples ({how})")
    started = time.perf_counter()
    directory = local_dir(route)
    model = build_local_model(data.train, settings, directory, seed=route.seed, progress=say)
    path = model.save(directory)
    trained = time.perf_counter() - started
    predictions = model.predict([example.text for example in data.calibration])
    right = sum(p.label == e.label for p, e in zip(predictions, data.calibration, strict=True))
    print(f"trained in {trained:.1f} s on {len(data.train):,} examples, {len(model.labels)} labels")
    print(
        f"held-out accuracy (calibration data, {len(data.calibration):,}): "
        f"{right / len(data.calibration):.1%}"
    )
    print(f"saved to {path}")
    return 0
