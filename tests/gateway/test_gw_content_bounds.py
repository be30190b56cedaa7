"""Reservations right for every content type: images, PDFs, tools, server tools, caching.

The emulator bills images by their pixels and PDFs by their pages, as the API does; random
bodies through a real gateway never spend beyond a key's budget, and each answer costs no more
than its reservation's bound.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from gw_helpers import HAIKU, SONNET, Gateway, running_gateway
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiergate.core.content import content_tokens, image_size, image_tokens, scan_pdf
from tiergate.core.prices import load_price_book
from tiergate.emulator import EmulatorServer
from tiergate.gateway.costs import request_bound

pytest_plugins = ("gw_fixtures",)

BOOK = load_price_book(use_env=False)


def png(width: int, height: int) -> str:
    """A PNG header of the given size (the API reads its size; so do the emulator and we)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + header
    body = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk
    body += struct.pack(">I", zlib.crc32(chunk))
    return base64.b64encode(body).decode()


def pdf(pages: int, text: str) -> str:
    objects = [
        f"<< /Type /Page /Contents (x) >>\nstream\nBT ({text}) Tj ET\nendstream"
        for _ in range(pages)
    ]
    body = "%PDF-1.4\n" + "\n".join(objects) + "\n<< /Type /Pages >>\n%%EOF"
    return base64.b64encode(body.encode("latin-1")).decode()


def image_block(width: int, height: int) -> dict[str, Any]:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": png(width, height)},
    }


def pdf_block(pages: int, text: str) -> dict[str, Any]:
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf(pages, text)},
    }


def test_images_are_sized_and_capped_as_the_api_bills_them() -> None:
    table = content_tokens()
    raw = base64.b64decode(png(1000, 1000))
    assert image_size(raw) == (1000, 1000)
    assert image_tokens((1000, 1000), 1600, table.pixels_per_token) == 1334  # Anthropic's table
    assert image_tokens((200, 200), 1600, table.pixels_per_token) == 54
    assert image_tokens((8000, 8000), 1600, table.pixels_per_token) == 1600
    assert image_tokens(None, 1600, table.pixels_per_token) == 1600
    scan = scan_pdf(base64.b64decode(pdf(7, "hello")), 10**6)
    assert scan.pages == 7 and "hello" in scan.shown_text


def test_a_body_of_images_is_bounded_by_its_blocks_not_its_bytes() -> None:
    haiku = BOOK.get(HAIKU)
    blocks = [image_block(1500, 1500) for _ in range(100)]  # the API's most for Haiku
    body = {"model": HAIKU, "max_tokens": 10, "messages": [{"role": "user", "content": blocks}]}
    raw = orjson.dumps(body)
    assert len(raw) < 13_000
    billed = 100 * 1600 * haiku.input / 1e6  # what the API (and the emulator) charge
    old_bound = (len(raw) + 10 * 5) / 1e6  # every byte a token: today's bound before the fix
    assert billed / old_bound > 12
    assert request_bound([haiku], raw, body).usd(10) >= billed


def test_server_tools_are_bounded_by_the_context_window_each_sampling() -> None:
    haiku = BOOK.get(HAIKU)
    body = {
        "model": HAIKU,
        "max_tokens": 100,
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        "messages": [{"role": "user", "content": "search the web"}],
    }
    bound = request_bound([haiku], orjson.dumps(body), body).usd(100)
    iterations = content_tokens().server_iterations
    assert bound >= haiku.context_window * iterations * haiku.input / 1e6 + 3 * 0.01


@pytest.fixture(scope="module")
def bounded_gateway(
    tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorServer
) -> Iterator[Gateway]:
    folder: Path = tmp_path_factory.mktemp("bounds")
    with running_gateway(folder, emulator.base_url, max_body_bytes=4 * 1024 * 1024) as gateway:
        yield gateway


texts = st.text(alphabet="abcdefghij klmnop,.!0123456789", min_size=1, max_size=300)
blocks = st.one_of(
    texts.map(lambda text: {"type": "text", "text": text}),
    st.tuples(st.integers(1, 9000), st.integers(1, 9000)).map(lambda size: image_block(*size)),
    st.tuples(st.integers(1, 40), texts).map(lambda args: pdf_block(*args)),
    st.tuples(st.integers(1, 3000), st.integers(1, 3000)).map(
        lambda size: {"type": "tool_result", "tool_use_id": "t1", "content": [image_block(*size)]}
    ),
)
cache_marks = st.sampled_from([None, {"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}])
tool_sets = st.sampled_from(
    [
        [],
        [{"name": "lookup", "description": "d", "input_schema": {"type": "object"}}],
        [{"type": "bash_20250124", "name": "bash"}],
    ]
)


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    content = draw(st.lists(blocks, min_size=1, max_size=6))
    mark = draw(cache_marks)
    if mark is not None:
        content[-1] = {**content[-1], "cache_control": mark}
    body: dict[str, Any] = {
        "model": draw(st.sampled_from([HAIKU, SONNET, "auto"])),
        "max_tokens": draw(st.integers(1, 3000)),
        "messages": [{"role": "user", "content": content}],
    }
    tools = draw(tool_sets)
    if tools:
        body["tools"] = tools
    if draw(st.booleans()):
        body["system"] = draw(texts)
    return body


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies(), budget=st.sampled_from([0.002, 0.01, 0.05]))
def test_random_bodies_never_spend_beyond_a_budget(
    bounded_gateway: Gateway, body: dict[str, Any], budget: float
) -> None:
    secret = bounded_gateway.new_key("bounded", budget_usd_day=budget)
    key_id = bounded_gateway.store.authenticate(secret).id  # type: ignore[union-attr]
    with bounded_gateway.client(key=secret) as client:
        for _ in range(4):
            try:
                client.messages.create(**body)
            except Exception as error:  # refused: over budget (429) only
                assert getattr(error, "status_code", None) == 429, error
                break
    rows = bounded_gateway.rows(key_id=key_id)
    assert sum(row["cost_usd"] for row in rows) <= budget + 1e-12
