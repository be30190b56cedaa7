"""A request's prompt as an ordered list of segments: tools, then system, then messages.

That is the order in which Anthropic builds (and caches) a prompt, so prompt caching and token
counting both work on this one flattened view. Each segment knows its token count and whether
it ends with a ``cache_control`` breakpoint.

Fixed framing costs, added to the text counts of :mod:`tiergate.emulator.tokens`:
a request pays ``REQUEST_OVERHEAD``; each message pays ``MESSAGE_OVERHEAD`` (role markers);
the first tool pays the tool-use system prompt Anthropic documents (``TOOLS_PREAMBLE_AUTO``
for ``auto``/``none``, ``TOOLS_PREAMBLE_FORCED`` for ``any``/``tool``); an image pays its
width x height / 750 after the API's downscaling, at most ~1,600 tokens; a PDF an image per
page plus its text (``tiergate.core.content``); a document by reference ``DOCUMENT_TOKENS``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tiergate.core.content import content_tokens, decode_base64, image_size, image_tokens, scan_pdf
from tiergate.emulator.errors import invalid
from tiergate.emulator.tokens import count_text

REQUEST_OVERHEAD = 3
MESSAGE_OVERHEAD = 4
TOOLS_PREAMBLE_AUTO = 346
TOOLS_PREAMBLE_FORCED = 313
DOCUMENT_TOKENS = 1500  # a document fetched by reference: its pages are not in the body
PDF_INFLATE_LIMIT = 32 * 1024 * 1024
MAX_BREAKPOINTS = 4
CACHE_TTLS = {"5m": 300.0, "1h": 3600.0}


@dataclass(frozen=True, slots=True)
class Segment:
    """One cacheable unit (a tool, a system block, a message block) of the prompt."""

    tokens: int
    block: object
    ttl: str | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    """``leading_tokens`` come before every segment (so they belong to every cached prefix);
    ``trailing_tokens`` (the output schema) come after them all."""

    segments: tuple[Segment, ...]
    leading_tokens: int
    trailing_tokens: int

    @property
    def total_tokens(self) -> int:
        segments = sum(segment.tokens for segment in self.segments)
        return self.leading_tokens + segments + self.trailing_tokens

    @property
    def has_breakpoints(self) -> bool:
        return any(segment.ttl is not None for segment in self.segments)


def flatten(body: Mapping[str, Any]) -> Prompt:
    """The prompt of a (validated) Messages request; raises 400 on bad ``cache_control``."""
    segments: list[Segment] = []
    tools = body.get("tools") or ()
    forced = (body.get("tool_choice") or {}).get("type") in ("any", "tool")
    for position, tool in enumerate(tools):
        preamble = 0
        if position == 0:
            preamble = TOOLS_PREAMBLE_FORCED if forced else TOOLS_PREAMBLE_AUTO
        described = {key: value for key, value in tool.items() if key != "cache_control"}
        segments.append(_segment(tool, preamble + count_text(orjson.dumps(described).decode())))
    system = body.get("system")
    if isinstance(system, str):
        if system:
            segments.append(Segment(count_text(system), system))
    elif isinstance(system, list):
        segments.extend(_segment(block, block_tokens(block)) for block in system)
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            segments.append(Segment(MESSAGE_OVERHEAD + count_text(content), message))
            continue
        for position, block in enumerate(content):
            overhead = MESSAGE_OVERHEAD if position == 0 else 0
            segments.append(_segment(block, overhead + block_tokens(block)))
    if isinstance(body.get("cache_control"), Mapping) and segments:
        # Automatic caching: the top-level marker acts as a breakpoint on the last block.
        last = segments[-1]
        segments[-1] = Segment(last.tokens, last.block, _ttl(body["cache_control"]))
    if sum(segment.ttl is not None for segment in segments) > MAX_BREAKPOINTS:
        found = sum(segment.ttl is not None for segment in segments)
        raise invalid(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {found}."
        )
    return Prompt(tuple(segments), REQUEST_OVERHEAD, _format_tokens(body))


def block_tokens(block: Any) -> int:
    """Tokens of one content block, by its type."""
    if not isinstance(block, Mapping):
        return count_text(str(block))
    kind = block.get("type")
    if kind == "text":
        return count_text(str(block.get("text", "")))
    if kind == "image":
        return _image_tokens(block.get("source") or {})
    if kind == "document":
        source = block.get("source") or {}
        if source.get("type") == "text":
            return count_text(str(source.get("data", "")))
        if source.get("type") == "content":
            return _content_tokens(source.get("content", ""))
        return _pdf_tokens(source)
    if kind == "tool_use":
        return count_text(str(block.get("name", ""))) + count_text(
            orjson.dumps(block.get("input", {})).decode()
        )
    if kind == "tool_result":
        return _content_tokens(block.get("content", ""))
    if kind == "thinking":
        return count_text(str(block.get("thinking", "")))
    return count_text(orjson.dumps(block).decode())


def _image_tokens(source: Mapping[str, Any]) -> int:
    """Billed by its pixels, as the API does (tiergate/data/content_tokens.yaml)."""
    table = content_tokens()
    data = decode_base64(source.get("data")) if source.get("type") == "base64" else None
    size = image_size(data) if data else None
    return image_tokens(size, table.image_max_tokens, table.pixels_per_token)


def _pdf_tokens(source: Mapping[str, Any]) -> int:
    """A PDF: an image per page plus the text it shows; by reference, a flat guess."""
    data = decode_base64(source.get("data")) if source.get("type") == "base64" else None
    if not data:
        return DOCUMENT_TOKENS
    scan = scan_pdf(data, PDF_INFLATE_LIMIT)
    return max(1, scan.pages) * content_tokens().page_image_tokens + count_text(scan.shown_text)


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return count_text(content)
    if isinstance(content, Sequence):
        return sum(block_tokens(block) for block in content)
    return 0


def _segment(block: Any, tokens: int) -> Segment:
    marker = block.get("cache_control") if isinstance(block, Mapping) else None
    return Segment(tokens, block, _ttl(marker) if marker is not None else None)


def _ttl(marker: Any) -> str:
    if not isinstance(marker, Mapping) or marker.get("type") != "ephemeral":
        raise invalid('cache_control: type must be "ephemeral"')
    ttl = marker.get("ttl", "5m")
    if ttl not in CACHE_TTLS:
        raise invalid(f'cache_control.ttl: must be "5m" or "1h", got {ttl!r}')
    return str(ttl)


def _format_tokens(body: Mapping[str, Any]) -> int:
    output_format = (body.get("output_config") or {}).get("format") or body.get("output_format")
    if not output_format:
        return 0
    return count_text(orjson.dumps(output_format.get("schema", {})).decode())
