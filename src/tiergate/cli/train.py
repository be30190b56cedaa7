"""``tiergate train ROUTE``: train the route's local model and save it as an artifact."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from tiergate.cli.formatting import say
from tiergate.cli.progress import add_progress_argument, progress_for


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
    add_progress_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tiergate.classifier.settings import FinetuneSettings
    from tiergate.routing.route import LOCAL, load_route
    from tiergate.routing.runtime import route_data
    from tiergate.routing.train import train_route

    route = load_route(args.route)
    if not route.task.trains_local_model or (LOCAL not in route.tiers and route.few_shot == 0):
        # No local tier and no few-shot neighbours: no local model would ever be used.
        print(
            f"nothing to train: route {route.name!r} ({route.task.kind}) uses no local "
            "model; run `tiergate calibrate` next"
        )
        return 0
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
    examples = len(route_data(route).train)
    say(f"training the local model of {route.name!r} on {examples:,} examples ({how})")
    with progress_for(args) as tracker:
        report = train_route(route, settings, say=say, tracker=tracker)
    print(
        f"trained in {report.seconds:.1f} s on {report.examples:,} examples, {report.labels} labels"
    )
    if report.held_out_accuracy is not None:
        print(
            f"held-out accuracy (calibration data, {report.held_out:,}): "
            f"{report.held_out_accuracy:.1%}"
        )
    print(f"saved to {report.saved}")
    return 0
