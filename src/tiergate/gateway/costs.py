"""Dollars for the gateway, always through the price book's one pricing function."""

from __future__ import annotations

from collections.abc import Sequence

from tiergate.core.cost import price_usage
from tiergate.core.prices import ModelPrice
from tiergate.core.usage import Usage


def max_cost_usd(
    prices: Sequence[ModelPrice], prompt_bytes: int, max_tokens: int, cached: bool
) -> float:
    """An upper bound on a request's cost, for budget reservations.

    No tokenizer makes more tokens than bytes of text, so the body's size bounds the prompt;
    with ``cache_control`` every prompt token is priced as a 1-hour cache write (the dearest
    input rate); the answer uses all of ``max_tokens``; the dearest reachable model is assumed.
    """
    usage = (
        Usage(cache_write_1h_tokens=prompt_bytes, output_tokens=max_tokens)
        if cached
        else Usage(input_tokens=prompt_bytes, output_tokens=max_tokens)
    )
    return max(price_usage(usage, price).total_usd for price in prices)


def usage_counts(usage: Usage) -> tuple[int, int, int, int]:
    """Input, output, cache-write and cache-read tokens as whole numbers."""
    return (
        int(usage.input_tokens),
        int(usage.output_tokens),
        int(usage.cache_write_tokens),
        int(usage.cache_read_tokens),
    )
