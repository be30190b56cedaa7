"""Gateways as real processes (``tiergate serve``), for replicas and for ``kill -9``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from gw_helpers import config_dict, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class GatewayProcess:
    config: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        command = [sys.executable, "-m", "tiergate", "serve", "--config", str(self.config)]
        command += ["--port", str(self.port)]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log.read_text()[-1500:]}")
            try:
                urllib.request.urlopen(self.base_url + "/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gateway did not start: {self.log.read_text()[-1500:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: nothing runs after it
        self.process.wait()
        self.process = None


def write_config(folder: Path, upstream: str, **overrides: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = config_dict(upstream, **overrides)
    path = folder / "gateway.yaml"
    path.write_bytes(orjson.dumps(config))  # JSON is YAML
    return path


@contextmanager
def gateway_processes(configs: list[Path], folder: Path) -> Iterator[list[GatewayProcess]]:
    processes = [
        GatewayProcess(config, free_port(), folder / f"gateway-{index}.log")
        for index, config in enumerate(configs)
    ]
    try:
        for process in processes:
            process.start()
        yield processes
    finally:
        for process in processes:
            process.stop()


@dataclass
class Answer:
    status: int
    request_id: str
    cost_usd: float | None


async def send(
    session: aiohttp.ClientSession, base_url: str, key: str, body: dict[str, Any]
) -> Answer:
    async with session.post(
        base_url + "/v1/messages",
        json=body,
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
    ) as response:
        await response.read()
        cost = response.headers.get("x-tiergate-cost-usd")
        return Answer(
            response.status,
            response.headers.get("request-id", ""),
            None if cost is None else float(cost),
        )


async def load(
    urls: list[str], key: str, bodies: list[dict[str, Any]], concurrency: int
) -> list[Answer | BaseException]:
    """Every body once, spread over the gateways, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(index: int, body: dict[str, Any]) -> Answer:
            async with gate:
                return await send(session, urls[index % len(urls)], key, body)

        calls = [one(index, body) for index, body in enumerate(bodies)]
        return await asyncio.gather(*calls, return_exceptions=True)
