"""Dollars for the gateway, always through the price book's one pricing function.

A budget reservation needs an upper bound on what a request can cost before it runs
(:func:`request_bound`). Text bills at most a token a byte, so the body's size bounds it; what
bills by the block rather than by its bytes is counted by the block, from
``tiergate/data/content_tokens.yaml``: an image by its pixels (at most the model's largest
image), a PDF by its pages (an image each) and its inflated text, tool definitions by the
tool-use system prompt, Anthropic-defined tools by theirs, server tools by the model's context
window for each sampling the server may run, plus their fees. Content fetched by reference has
no size in the body: the context window bounds it. A prompt with ``cache_control`` is priced
as 1-hour cache writes (the dearest input rate); the answer uses all of ``max_tokens``; the
dearest model the request may reach is assumed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tiergate.core.content import (
    ContentTokens,
    content_tokens,
    decode_base64,
    image_size,
    image_tokens,
    scan_pdf,
)
from tiergate.core.cost import price_usage
from tiergate.core.prices import ModelPrice
from tiergate.core.usage import Usage

# Bytes that show a body may hold something billed by the block, not by its bytes.
MEDIA_MARKERS = (b'"image"', b'"document"', b'"tools"', b'"mcp_servers"')
ONE_MILLION = 1_000_000


@dataclass
class Content:
    """What a body holds beyond plain text, model-independent."""

    media_bytes: int = 0  # base64 payloads: not text, counted by the block instead
    images: list[tuple[int, int] | None] = field(default_factory=list)  # None: size unknown
    pdf_pages: int = 0
    pdf_text_bytes: int = 0
    by_reference: bool = False  # a document by URL or file id: size unknown
    tools: bool = False
    defined_tool_tokens: int = 0
    server_tools: bool = False
    server_fees_usd: float = 0.0


@dataclass(frozen=True)
class ModelBound:
    price: ModelPrice
    prompt_tokens: int
    cached: bool
    output_multiplier: int
    fees_usd: float

    def usd(self, max_tokens: int) -> float:
        output = max_tokens * self.output_multiplier
        usage = (
            Usage(cache_write_1h_tokens=self.prompt_tokens, output_tokens=output)
            if self.cached
            else Usage(input_tokens=self.prompt_tokens, output_tokens=output)
        )
        return price_usage(usage, self.price).total_usd + self.fees_usd

    def tokens_for(self, usd: float) -> int:
        """The largest ``max_tokens`` whose bound is within ``usd`` (negative if none)."""
        fixed = self.usd(0)
        per_token = (self.usd(ONE_MILLION) - fixed) / ONE_MILLION
        if per_token <= 0:
            return ONE_MILLION
        # A hair under the exact quotient: float rounding must never round a bound up past usd.
        return math.floor((usd - fixed) / per_token * (1 - 1e-9))


@dataclass(frozen=True)
class RequestBound:
    models: tuple[ModelBound, ...]

    def usd(self, max_tokens: int) -> float:
        return max(model.usd(max_tokens) for model in self.models)

    def tokens_for(self, usd: float) -> int:
        return min(model.tokens_for(usd) for model in self.models)


def request_bound(
    prices: Sequence[ModelPrice], raw: bytes, body: dict[str, Any] | None = None
) -> RequestBound:
    """The bound for a raw Messages body (``body`` parsed, when the caller has it)."""
    cached = b"cache_control" in raw
    if body is None or not any(marker in raw for marker in MEDIA_MARKERS):
        # Plain text, the common case: a token a byte, nothing more to look at.
        return RequestBound(
            tuple(
                ModelBound(price, min(len(raw), price.context_window), cached, 1, 0.0)
                for price in prices
            )
        )
    table = content_tokens()
    content = inspect(body, table, inflate_limit=max(p.context_window for p in prices))
    text_bytes = len(raw) - content.media_bytes
    models = []
    for price in prices:
        prompt = text_bytes + content.defined_tool_tokens
        prompt += table.tools_system_tokens if content.tools else 0
        cap = table.image_cap(price.name)
        prompt += sum(image_tokens(size, cap, table.pixels_per_token) for size in content.images)
        prompt += content.pdf_pages * (
            max(table.page_image_tokens, cap) + table.page_overhead_tokens
        )
        prompt += content.pdf_text_bytes
        multiplier = 1
        if content.by_reference or content.server_tools:
            prompt = max(prompt, price.context_window)
        # The API refuses a prompt longer than the context window: none bills more than that.
        prompt = min(prompt, price.context_window)
        if content.server_tools:
            multiplier = table.server_iterations
            prompt *= multiplier
        models.append(ModelBound(price, prompt, cached, multiplier, content.server_fees_usd))
    return RequestBound(tuple(models))


def body_bound(prices: Sequence[ModelPrice], raw: bytes, max_tokens: int) -> float:
    """An upper bound on a raw Messages body's cost (parsed here when it has media)."""
    import orjson

    body = orjson.loads(raw) if any(marker in raw for marker in MEDIA_MARKERS) else None
    return request_bound(prices, raw, body).usd(max_tokens)


def max_cost_usd(
    prices: Sequence[ModelPrice], prompt_bytes: int, max_tokens: int, cached: bool, *, tools: bool
) -> float:
    """A text prompt of ``prompt_bytes`` (the classification tiers' own requests)."""
    table = content_tokens()
    prompt = prompt_bytes + (table.tools_system_tokens if tools else 0)
    return max(
        ModelBound(price, min(prompt, price.context_window), cached, 1, 0.0).usd(max_tokens)
        for price in prices
    )


def inspect(body: dict[str, Any], table: ContentTokens, *, inflate_limit: int) -> Content:
    content = Content()
    for tool in body.get("tools") or ():
        _tool(tool, table, content)
    if body.get("mcp_servers"):
        content.server_tools = True
    for block in _blocks({key: value for key, value in body.items() if key != "tools"}):
        kind = block.get("type")
        source = block.get("source")
        if not isinstance(source, dict):
            continue
        if kind == "image":
            data = decode_base64(source.get("data")) if source.get("type") == "base64" else None
            content.media_bytes += len(source.get("data") or "") if data is not None else 0
            content.images.append(image_size(data) if data else None)
        elif kind == "document":
            _document(source, content, inflate_limit)
    return content


def _tool(tool: Any, table: ContentTokens, content: Content) -> None:
    content.tools = True
    if not isinstance(tool, dict):
        return
    kind = str(tool.get("type") or "custom")
    if kind == "custom":
        return
    if any(kind.startswith(name) for name in table.server_tools):
        content.server_tools = True
        uses = tool.get("max_uses")
        uses = uses if isinstance(uses, int) and uses > 0 else table.default_max_uses
        fee = next((usd for name, usd in table.usd_per_use.items() if kind.startswith(name)), 0.0)
        content.server_fees_usd += fee * uses
        return
    for prefix, tokens in table.defined_tool_tokens.items():
        if kind.startswith(prefix):
            content.defined_tool_tokens += tokens
            return
    content.defined_tool_tokens += max(table.defined_tool_tokens.values())  # unknown: the most


def _document(source: dict[str, Any], content: Content, inflate_limit: int) -> None:
    kind = source.get("type")
    if kind in ("text", "content"):
        return  # text in the body (its bytes count); nested blocks are walked on their own
    if kind != "base64":
        content.by_reference = True
        return
    data = decode_base64(source.get("data"))
    if data is None:
        content.by_reference = True  # the API will refuse it; bound it all the same
        return
    content.media_bytes += len(source.get("data") or "")
    scan = scan_pdf(data, inflate_limit)
    if scan.content_bytes > inflate_limit:
        content.by_reference = True
    content.pdf_pages += scan.pages or content_tokens().max_pages
    content.pdf_text_bytes += scan.content_bytes


def _blocks(value: Any) -> Iterator[dict[str, Any]]:
    """Every mapping with a ``type`` anywhere inside ``value`` (tool results nest content)."""
    if isinstance(value, dict):
        if "type" in value:
            yield value
        for item in value.values():
            if isinstance(item, dict | list):
                yield from _blocks(item)
    elif isinstance(value, list):
        for item in value:
            yield from _blocks(item)


def usage_counts(usage: Usage) -> tuple[int, int, int, int]:
    """Input, output, cache-write and cache-read tokens as whole numbers."""
    return (
        int(usage.input_tokens),
        int(usage.output_tokens),
        int(usage.cache_write_tokens),
        int(usage.cache_read_tokens),
    )
