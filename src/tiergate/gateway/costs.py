"""Dollars for the gateway, always through the price book's one pricing function."""

from __future__ import annotations

from collections.abc import Sequence

from tiergate.core.cost import price_usage
from tiergate.core.prices import ModelPrice
from tiergate.core.usage import Usage

# Content fetched by reference (documents, images by URL or file id): its size is not in the body.
BY_REFERENCE = (b'"url"', b'"file_id"')
# Tool definitions add a system prompt of the API's own, a few hundred tokens (Anthropic's tool-use
# pricing table); this allowance is generous on purpose.
TOOLS_ALLOWANCE_TOKENS = 1_000


def max_cost_usd(
    prices: Sequence[ModelPrice],
    prompt_bytes: int,
    max_tokens: int,
    cached: bool,
    *,
    tools: bool = False,
    by_reference: bool = False,
) -> float:
    """An upper bound on a request's cost, for budget reservations.

    No tokenizer makes more tokens than bytes of text, so the body's size bounds a text prompt,
    plus an allowance when it declares tools; a body that fetches content by reference may cost
    far more than its size, so it is bounded by the model's whole context window. With
    ``cache_control`` every prompt token is priced as a 1-hour cache write (the dearest input
    rate); the answer uses all of ``max_tokens``; the dearest reachable model is assumed.
    """

    def bound(price: ModelPrice) -> float:
        prompt = prompt_bytes + (TOOLS_ALLOWANCE_TOKENS if tools else 0)
        if by_reference:
            prompt = max(prompt, price.context_window)
        usage = (
            Usage(cache_write_1h_tokens=prompt, output_tokens=max_tokens)
            if cached
            else Usage(input_tokens=prompt, output_tokens=max_tokens)
        )
        return price_usage(usage, price).total_usd

    return max(bound(price) for price in prices)


def body_bound(prices: Sequence[ModelPrice], raw: bytes, max_tokens: int) -> float:
    """:func:`max_cost_usd` for a raw Messages API body."""
    return max_cost_usd(
        prices,
        len(raw),
        max_tokens,
        b"cache_control" in raw,
        tools=b'"tools"' in raw,
        by_reference=any(marker in raw for marker in BY_REFERENCE),
    )


def usage_counts(usage: Usage) -> tuple[int, int, int, int]:
    """Input, output, cache-write and cache-read tokens as whole numbers."""
    return (
        int(usage.input_tokens),
        int(usage.output_tokens),
        int(usage.cache_write_tokens),
        int(usage.cache_read_tokens),
    )
