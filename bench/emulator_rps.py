"""How many plain requests a second the emulator serves in zero-latency mode, on one core.

Starts ``tiergate emulate --latency zero`` as a separate process (one uvicorn worker, pinned to
CPU 0 where the OS allows), then drives it from this process (pinned to the other CPUs) with a
pure-Python keep-alive HTTP/1.1 client: ``--connections`` concurrent connections, each sending
small non-streaming ``POST /v1/messages`` requests back to back, until ``--requests`` are done
or ``--seconds`` have passed. Prints one table row.

    .venv/bin/python bench/emulator_rps.py            # defaults: 20000 requests, 50 connections
    .venv/bin/python bench/emulator_rps.py --requests 50000 --connections 100
    .venv/bin/python bench/emulator_rps.py --url http://127.0.0.1:8090   # an emulator you started
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

BODY = orjson.dumps(
    {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Route this ticket: my card has not arrived."}],
    }
)


def request_bytes(host: str, port: int) -> bytes:
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Authorization: Bearer sk-test-not-a-real-key\r\nanthropic-version: 2026-10-21\r\n"
        f"content-type: application/json\r\ncontent-length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0


async def one_connection(
    host: str, port: int, payload: bytes, tally: Tally, budget: int, deadline: float
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while tally.sent < budget and time.perf_counter() < deadline:
            tally.sent += 1
            started = time.perf_counter()
            writer.write(payload)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            tally.latencies.append(time.perf_counter() - started)
            if b" 200 " not in status_line:
                tally.errors += 1
    finally:
        writer.close()


async def drive(
    host: str, port: int, connections: int, budget: int, seconds: float
) -> tuple[Tally, float]:
    payload = request_bytes(host, port)
    tally = Tally()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(one_connection(host, port, payload, tally, budget, deadline) for _ in range(connections))
    )
    return tally, time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_emulator(port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "tiergate",
        "emulate",
        "--latency",
        "zero",
        "--port",
        str(port),
    ]
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        command = ["taskset", "-c", "0", *command] if _has_taskset() else command
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the emulator did not start")


def _fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for the client too when installed, so the client is not the bottleneck."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _has_taskset() -> bool:
    return subprocess.run(["which", "taskset"], capture_output=True).returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--url", help="drive an emulator already running here instead")
    args = parser.parse_args()

    process = None
    if args.url:
        host, _, port_text = args.url.removeprefix("http://").rstrip("/").partition(":")
        port = int(port_text or 80)
    else:
        host, port = "127.0.0.1", free_port()
        process = start_emulator(port)
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1 and process:
        os.sched_setaffinity(0, os.sched_getaffinity(0) - {0})
    try:
        asyncio.run(drive(host, port, args.connections, 200, 5.0))  # warm up
        with asyncio.Runner(loop_factory=_fast_loop_factory()) as runner:
            tally, elapsed = runner.run(
                drive(host, port, args.connections, args.requests, args.seconds)
            )
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
    done = sorted(tally.latencies)
    p50 = statistics.median(done) * 1000 if done else float("nan")
    p99 = done[min(len(done) - 1, int(len(done) * 0.99))] * 1000 if done else float("nan")
    print(f"{'requests':>9} {'errors':>7} {'seconds':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    rate = len(done) / elapsed
    print(f"{len(done):>9} {tally.errors:>7} {elapsed:>8.2f} {rate:>9.0f} {p50:>8.2f} {p99:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
