"""An ASGI app on a real uvicorn server: in a background thread on a free port, or in the
foreground. The emulator and the gateway both run this way, so the official SDK talks real HTTP
to them from sync or async code alike (tests, demos, benchmarks)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn


class BackgroundServer:
    """``start()`` binds 127.0.0.1 (a free port by default) and serves ``app`` in a thread."""

    name = "tiergate-server"
    startup_timeout_s = 15.0
    graceful_timeout_s = 2

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.options = options or {}  # more uvicorn settings (the gateway's hardening)
        self._host, self._port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self) -> str:
        """Bind, start serving in a thread, and return the base URL once it accepts requests."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._port))
        port = listener.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=self.graceful_timeout_s,
            **self.options,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name=self.name, daemon=True
        )
        thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.005)
        self._server, self._thread = server, thread
        self.base_url = f"http://{self._host}:{port}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=self.startup_timeout_s)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def serve_forever(
    app: Any,
    host: str,
    port: int,
    log_level: str = "warning",
    graceful_timeout_s: int = 2,
    options: dict[str, Any] | None = None,
) -> None:
    """Serve in the foreground (one worker, uvloop and httptools when installed) until Ctrl-C."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        loop="auto",
        timeout_graceful_shutdown=graceful_timeout_s,
        **{"http": "auto", **(options or {})},
    )
