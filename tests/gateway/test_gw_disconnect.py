"""A client that hangs up while the gateway waits on a complete (non-streamed) answer: the
upstream call is cancelled (the upstream sees its connection close) and the ledger row says so,
whether the client left at once (before the gateway starts watching, gateway/disconnect.py) or
while the answer was being made."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from gw_helpers import HAIKU, running_gateway, user

from tiergate.serving import BackgroundServer


class Holds:
    """An upstream that never answers, and notes when the gateway hangs up on it."""

    def __init__(self) -> None:
        self.called = threading.Event()
        self.hung_up = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        self.called.set()
        while (await receive())["type"] != "http.disconnect":
            pass
        self.hung_up.set()


def send_and_leave(base_url: str, key: str, leave_after_s: float, upstream: Holds) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    body = orjson.dumps({"model": HAIKU, "max_tokens": 20, "messages": user("hi")})
    head = (
        f"POST /v1/messages HTTP/1.1\r\nhost: {host}\r\nx-api-key: {key}\r\n"
        f"anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(head + body)
        assert upstream.called.wait(10)  # the gateway is waiting on the upstream
        time.sleep(leave_after_s)


@pytest.mark.parametrize("leave_after_s", [0.0, 0.3])
def test_a_client_that_hangs_up_cancels_the_upstream_call(
    tmp_path: Path, leave_after_s: float
) -> None:
    upstream = Holds()
    with (
        BackgroundServer(upstream) as server,
        running_gateway(tmp_path, server.base_url) as gateway,
    ):
        send_and_leave(gateway.base_url, gateway.key, leave_after_s, upstream)
        assert upstream.hung_up.wait(10)  # no timing is asserted: only that it happens
        rows: list[dict[str, Any]] = []
        for _ in range(200):
            rows = gateway.rows()
            if rows:
                break
            time.sleep(0.02)
        [row] = rows
        assert row["outcome"] == "client_disconnected" and row["status"] == 499
        assert not row["streamed"]
