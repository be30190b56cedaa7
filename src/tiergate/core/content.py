"""What images, PDFs and tools bill as input tokens: pure functions over bytes and data.

The figures (pixels per token, the largest image, per-page costs, tool prompts) live in
``tiergate/data/content_tokens.yaml`` with their sources. The gateway's budget bounds and the
emulator's billing both read them from here, so the two agree by construction.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

# The API scales an image down until its long edge is at most this many pixels.
LONG_EDGE_PX = 1568
PAGE_MARKER = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
STREAM = re.compile(rb"stream\r?\n")
LITERAL = re.compile(rb"\(((?:[^()\\]|\\.)*)\)\s*Tj")


@dataclass(frozen=True)
class ContentTokens:
    pixels_per_token: float
    image_max_tokens: int
    image_max_by_model: Mapping[str, int]
    page_image_tokens: int
    page_overhead_tokens: int
    max_pages: int
    tools_system_tokens: int
    defined_tool_tokens: Mapping[str, int]
    server_tools: tuple[str, ...]
    server_iterations: int
    usd_per_use: Mapping[str, float]
    default_max_uses: int

    def image_cap(self, model: str) -> int:
        return self.image_max_by_model.get(model, self.image_max_tokens)


@cache
def content_tokens() -> ContentTokens:
    text = resources.files("tiergate.data").joinpath("content_tokens.yaml").read_text()
    raw: dict[str, Any] = yaml.safe_load(text)
    image, pdf, tools = raw["image"], raw["pdf"], raw["tools"]
    return ContentTokens(
        pixels_per_token=float(image["pixels_per_token"]),
        image_max_tokens=int(image["max_tokens"]),
        image_max_by_model={str(k): int(v) for k, v in image["max_tokens_by_model"].items()},
        page_image_tokens=int(pdf["page_image_tokens"]),
        page_overhead_tokens=int(pdf["page_overhead_tokens"]),
        max_pages=int(pdf["max_pages"]),
        tools_system_tokens=int(tools["system_prompt_tokens"]),
        defined_tool_tokens={str(k): int(v) for k, v in tools["defined_tool_tokens"].items()},
        server_tools=tuple(str(name) for name in tools["server_tools"]),
        server_iterations=int(tools["server_iterations"]),
        usd_per_use={str(k): float(v) for k, v in tools["usd_per_use"].items()},
        default_max_uses=int(tools["default_max_uses"]),
    )


def decode_base64(data: Any) -> bytes | None:
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF, WebP or JPEG header; None if it is none of them."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        position += 2 + length
    return None


def image_tokens(size: tuple[int, int] | None, cap: int, pixels_per_token: float) -> int:
    """Tokens the API bills for an image: its area over ``pixels_per_token`` after scaling the
    long edge down to 1568 px, at most ``cap``; an image of unknown size costs ``cap``."""
    if size is None:
        return cap
    width, height = size
    long_edge = max(width, height, 1)
    scale = min(1.0, LONG_EDGE_PX / long_edge)
    return min(cap, math.ceil(width * height * scale * scale / pixels_per_token))


@dataclass(frozen=True)
class PdfScan:
    pages: int  # page objects found (0: none could be seen)
    content_bytes: int  # the file plus every stream inflated: no more glyphs than this
    shown_text: str  # text of uncompressed ``(...) Tj`` operators (what the emulator bills)


def scan_pdf(data: bytes, inflate_limit: int) -> PdfScan:
    """Pages and an upper bound on the text in a PDF, inflating its streams up to a limit.

    Text drawn on a page takes at least a byte per glyph in a content stream, so the file's
    bytes plus its inflated streams bound the text's tokens; page objects hidden in compressed
    object streams are found in the inflated data too.
    """
    pages = len(PAGE_MARKER.findall(data))
    inflated_total = 0
    shown = [match.decode("latin-1") for match in LITERAL.findall(data)]
    for match in STREAM.finditer(data):
        if inflated_total > inflate_limit:
            break
        inflater = zlib.decompressobj()
        try:
            inflated = inflater.decompress(data[match.end() :], inflate_limit - inflated_total + 1)
        except zlib.error:
            continue
        inflated_total += len(inflated)
        pages += len(PAGE_MARKER.findall(inflated))
        shown += [found.decode("latin-1") for found in LITERAL.findall(inflated)]
    return PdfScan(pages, len(data) + inflated_total, " ".join(shown))
