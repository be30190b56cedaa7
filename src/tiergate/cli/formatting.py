"""Small formatters shared by the commands' tables, and where notices go."""

from __future__ import annotations

import sys


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal, or "-" when there is none."""
    return "-" if value is None else f"{value:.1%}"


def usd(value: float | None, decimals: int = 4) -> str:
    """Dollars with thousands separators, or "-" when there is no figure."""
    return "-" if value is None else f"${value:,.{decimals}f}"


def say(message: str) -> None:
    """Progress and notices go to stderr, so --json output on stdout stays clean."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
