"""Running the gateway: in the foreground (``tiergate serve``) or in-process on a free port.

In-process (tests), a real uvicorn server listens on 127.0.0.1 in a thread with its own event
loop, so the official SDK talks real HTTP to it::

    with GatewayServer(config) as gateway:
        client = anthropic.Anthropic(api_key=key, base_url=gateway.base_url)
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

import uvicorn

from tiergate.gateway.app import GatewayApp
from tiergate.gateway.config import GatewayConfig

STARTUP_TIMEOUT_S = 60.0  # a classification route loads its local model at start-up
T = TypeVar("T")


class GatewayServer:
    def __init__(self, config: GatewayConfig, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = GatewayApp(config)
        self._host, self._port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self) -> str:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._port))
        port = listener.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name="tiergate-gateway", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        self.base_url = f"http://{self._host}:{port}"
        return self.base_url

    def call(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the server's loop from another thread (e.g. a ledger flush)."""
        if self.app.loop is None:
            raise RuntimeError("the gateway has not started")
        return asyncio.run_coroutine_threadsafe(_run(work), self.app.loop).result(timeout=30)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=STARTUP_TIMEOUT_S)
        self._server = self._thread = None

    def __enter__(self) -> GatewayServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


async def _run(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def serve_forever(config: GatewayConfig, host: str, port: int, log_level: str = "warning") -> None:
    """One worker, uvloop and httptools when installed, until Ctrl-C (the ledger is flushed)."""
    uvicorn.run(
        GatewayApp(config),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        loop="auto",
        http="auto",
        timeout_graceful_shutdown=10,
    )
