"""Small formatters shared by the commands' tables."""

from __future__ import annotations


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal, or "-" when there is none."""
    return "-" if value is None else f"{value:.1%}"
