"""Running the gateway: in the foreground (``tiergate serve``) or in-process on a free port.

In-process (tests), a real uvicorn server listens on 127.0.0.1 in a thread with its own event
loop, so the official SDK talks real HTTP to it::

    with GatewayServer(config) as gateway:
        client = anthropic.Anthropic(api_key=key, base_url=gateway.base_url)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tiergate.gateway.app import GatewayApp
from tiergate.gateway.config import GatewayConfig
from tiergate.gateway.hardening import uvicorn_options
from tiergate.serving import BackgroundServer
from tiergate.serving import serve_forever as serve_app

T = TypeVar("T")


class GatewayServer(BackgroundServer):
    name = "tiergate-gateway"
    startup_timeout_s = 60.0  # a classification route loads its local model at start-up
    graceful_timeout_s = 5
    app: GatewayApp

    def __init__(self, config: GatewayConfig, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(GatewayApp(config), host=host, port=port, options=server_options(config))

    def call(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the server's loop from another thread (e.g. a ledger flush)."""
        if self.app.loop is None:
            raise RuntimeError("the gateway has not started")
        return asyncio.run_coroutine_threadsafe(_run(work), self.app.loop).result(timeout=30)


async def _run(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def server_options(config: GatewayConfig) -> dict[str, object]:
    """The hardened server, its connection cap leaving room for the upstream pool and files."""
    return uvicorn_options(config.server, reserved_fds=config.upstream.connections + 64)


def serve_forever(config: GatewayConfig, host: str, port: int, log_level: str = "warning") -> None:
    """One worker, uvloop and httptools when installed, until Ctrl-C (the ledger is flushed)."""
    options = server_options(config)
    app = GatewayApp(config, settle_heap=True)  # the process is the gateway's alone
    serve_app(app, host, port, log_level, graceful_timeout_s=10, options=options)
