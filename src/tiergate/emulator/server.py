"""Running the emulator: in-process on a free port (tests), or in the foreground (the CLI).

In-process, a real uvicorn server listens on 127.0.0.1 in a background thread with its own
event loop, so the official SDK talks real HTTP to it, from sync or async code alike::

    with EmulatorServer(EmulatorConfig(seed=7)) as emulator:
        client = anthropic.Anthropic(api_key="sk-test", base_url=emulator.base_url)

    async with EmulatorServer() as emulator:
        client = anthropic.AsyncAnthropic(api_key="sk-test", base_url=emulator.base_url)
"""

from __future__ import annotations

from tiergate.emulator.app import EmulatorApp
from tiergate.emulator.config import EmulatorConfig
from tiergate.emulator.state import EmulatorState
from tiergate.serving import BackgroundServer
from tiergate.serving import serve_forever as serve_app


class EmulatorServer(BackgroundServer):
    """A started emulator: ``base_url`` to point clients at, ``state`` to inspect what it saw."""

    name = "tiergate-emulator"
    app: EmulatorApp

    def __init__(
        self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(EmulatorApp(config), host=host, port=port)

    @property
    def state(self) -> EmulatorState:
        return self.app.state


def serve_forever(config: EmulatorConfig, host: str, port: int, log_level: str = "warning") -> None:
    """Serve in the foreground (one worker, uvloop and httptools when installed) until Ctrl-C."""
    serve_app(EmulatorApp(config), host, port, log_level)
