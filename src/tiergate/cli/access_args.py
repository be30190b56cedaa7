"""The options every command that may reach Claude shares; light, so parsing stays fast."""

from __future__ import annotations

import argparse


def add_access_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reaching Claude")
    group.add_argument(
        "--emulate", action="store_true", help="use the built-in emulator even with a key"
    )
    group.add_argument(
        "--base-url", help="an Anthropic-compatible server (default $ANTHROPIC_BASE_URL)"
    )
    group.add_argument("--seed", type=int, default=0, help="emulator seed (default %(default)s)")
    group.add_argument(
        "--latency",
        default="zero",
        help="emulator latency: zero, realistic, or a scale factor (default %(default)s)",
    )


def latency_scale(text: str) -> float:
    if text == "zero":
        return 0.0
    if text == "realistic":
        return 1.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--latency must be zero, realistic or a number, got {text!r}") from None
    if value < 0:
        raise ValueError("--latency must not be negative")
    return value
