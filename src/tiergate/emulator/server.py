"""Running the emulator: in-process on a free port (tests), or in the foreground (the CLI).

In-process, a real uvicorn server listens on 127.0.0.1 in a background thread with its own
event loop, so the official SDK talks real HTTP to it, from sync or async code alike::

    with EmulatorServer(EmulatorConfig(seed=7)) as emulator:
        client = anthropic.Anthropic(api_key="sk-test", base_url=emulator.base_url)

    async with EmulatorServer() as emulator:
        client = anthropic.AsyncAnthropic(api_key="sk-test", base_url=emulator.base_url)
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType

import uvicorn

from tiergate.emulator.app import EmulatorApp
from tiergate.emulator.config import EmulatorConfig
from tiergate.emulator.state import EmulatorState

STARTUP_TIMEOUT_S = 15.0


class EmulatorServer:
    """A started emulator: ``base_url`` to point clients at, ``state`` to inspect what it saw."""

    def __init__(
        self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = EmulatorApp(config)
        self._host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    @property
    def state(self) -> EmulatorState:
        return self.app.state

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
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name="tiergate-emulator", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.005)
        self._server, self._thread = server, thread
        self.base_url = f"http://{self._host}:{port}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=STARTUP_TIMEOUT_S)
        self._server = self._thread = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmulatorServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def serve_forever(config: EmulatorConfig, host: str, port: int, log_level: str = "warning") -> None:
    """Serve in the foreground (one worker, uvloop and httptools when installed) until Ctrl-C."""
    uvicorn.run(
        EmulatorApp(config),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        loop="auto",
        http="auto",
    )
