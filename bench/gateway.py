"""The gateway against a direct call and the LiteLLM proxy, side by side, in one run.

Starts, each as its own process on 127.0.0.1:

- the emulator, ``tiergate emulate --latency zero`` (the upstream of everything);
- the gateway, ``tiergate serve`` with auth, per-model limits, a daily budget, the SQLite ledger
  and metrics all on (limits and budget set high enough not to refuse: they are checked, not hit);
- a bare forwarder (raw ASGI + aiohttp + orjson, no auth, limits, budget or ledger): the floor
  of the gateway's stack on this machine at this moment, to tell the stack from the features;
  and the same with the gateway's own HTTP/1.1 client (``transports/http1.py``) in aiohttp's
  place, so the features are also compared on the client the gateway uses;
- the gateway with its budgets, limits and keys in Redis (``state: redis://``, a redis-server
  the bench starts on a free port), and two such gateways on one Redis, loaded together by one
  load generator (the aggregate rate); each gateway keeps its own SQLite ledger;
- the LiteLLM proxy (``litellm[proxy]`` in its own virtual environment, ``--litellm-venv``,
  default /tmp/litellm-venv; one worker, ``LITELLM_LOCAL_MODEL_COST_MAP=True``) forwarding
  ``/v1/messages`` to the same emulator; skipped, and said so, when it is not installed.

Load comes from another process (this script re-run with ``--generate``): a pure-Python
asyncio HTTP/1.1 keep-alive client, bounded in count and time. Per target it measures the
saturated rate (``--connections`` connections back to back) and latency at a fixed open-loop rate
(``--rate``, default 167/s = 10,000 a minute); "added" is the target minus direct. Then the
gateway's resident memory after a warm-up and after ``--requests`` more requests.

    .venv/bin/python bench/gateway.py                          # the full run (200,000 requests)
    .venv/bin/python bench/gateway.py --requests 20000 --no-litellm      # a quick one

Setup for LiteLLM (once): python3 -m venv /tmp/litellm-venv &&
/tmp/litellm-venv/bin/pip install 'litellm[proxy]'
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MODEL = "claude-haiku-4-5"
BODY = orjson.dumps(
    {
        "model": MODEL,
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "Route this ticket: my card has not arrived."}],
    }
)
FAKE_KEY = "sk-test-bench-not-a-real-key"


# ---------------------------------------------------------------- load generator (own process)


def request_bytes(port: int, key: str) -> bytes:
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"x-api-key: {key}\r\nAuthorization: Bearer {key}\r\nanthropic-version: 2023-06-01\r\n"
        f"content-type: application/json\r\ncontent-length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, payload: bytes) -> int:
        self.writer.write(payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


async def connect(port: int) -> Connection:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return Connection(reader, writer)


async def saturate(
    ports: list[int], key: str, connections: int, count: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + seconds

    async def worker(port: int) -> None:
        nonlocal errors, sent
        payload = request_bytes(port, key)
        connection = await connect(port)
        while sent < count and time.perf_counter() < deadline:
            sent += 1
            started = time.perf_counter()
            status = await connection.exchange(payload)
            latencies.append(time.perf_counter() - started)
            errors += status != 200
        connection.writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(ports[i % len(ports)]) for i in range(connections)))
    elapsed = time.perf_counter() - started
    return {"done": len(latencies), "errors": errors, "seconds": elapsed, **_percentiles(latencies)}


async def fixed_rate(
    ports: list[int], key: str, rate: float, count: int, seconds: float
) -> dict[str, Any]:
    """Open loop: request i is due at i / rate, whatever the earlier ones are doing."""
    payloads: dict[Connection, bytes] = {}
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for index in range(16 * len(ports)):
        port = ports[index % len(ports)]
        connection = await connect(port)
        payloads[connection] = request_bytes(port, key)
        idle.put_nowait(connection)
    latencies: list[float] = []
    errors = 0
    late = 0

    async def one(due: float) -> None:
        nonlocal errors
        connection = await idle.get()
        status = await connection.exchange(payloads[connection])
        latencies.append(time.perf_counter() - due)  # from when it was due: queueing counts
        errors += status != 200
        idle.put_nowait(connection)

    loop = asyncio.get_running_loop()
    start = time.perf_counter() + 0.05
    tasks = []
    for index in range(count):
        due = start + index / rate
        if due - start > seconds:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            late += 1
        tasks.append(loop.create_task(one(due)))
    # A target slower than the rate falls behind; what is still open after the cap counts as
    # unfinished (and its latency is at least the cap, so the percentiles stay honest).
    _, pending = await asyncio.wait(tasks, timeout=seconds + 30)
    for task in pending:
        task.cancel()
        latencies.append(seconds + 30)
    return {
        "done": len(latencies) - len(pending),
        "errors": errors,
        "unfinished": len(pending),
        **_percentiles(latencies),
    }


def _percentiles(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    ordered = sorted(latencies)
    return {
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def generate(args: argparse.Namespace) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    ports = [int(port) for port in str(args.port).split(",")]
    if args.mode == "saturate":
        work = saturate(ports, args.key, args.connections, args.count, args.seconds)
    else:
        work = fixed_rate(ports, args.key, args.rate, args.count, args.seconds)
    print(orjson.dumps(asyncio.run(work)).decode())


def load(
    port: int | str, key: str, mode: str, count: int, seconds: float, **extra: Any
) -> dict[str, Any]:
    """``port`` may be several, comma-separated: one generator loads them all together."""
    command = [PYTHON, __file__, "--generate", mode, "--port", str(port), "--key", key]
    command += ["--count", str(count), "--seconds", str(seconds)]
    for name, value in extra.items():
        command += [f"--{name}", str(value)]
    output = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    if output.returncode != 0:
        raise RuntimeError(f"load generator failed: {output.stderr.strip()[-600:]}")
    return orjson.loads(output.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ---------------------------------------------------------------- a bare forwarder (reference)


def bare_forwarder(port: int, upstream: str, client: str = "aiohttp") -> None:
    """Raw ASGI + an HTTP client + orjson and nothing else: the floor of the gateway's stack.

    ``client``: aiohttp (the issue's reference forwarder), or ``lean``, the HTTP/1.1 client the
    gateway itself forwards complete answers with (``transports/http1.py``), so the gateway's
    own features are compared on the same client too.
    """
    import aiohttp
    import uvicorn

    from tiergate.transports.http1 import Http1Pool

    session: list[aiohttp.ClientSession] = []
    pools: list[Http1Pool] = []
    headers = {
        "x-api-key": FAKE_KEY,
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
    }

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if client == "lean":
                        pools.append(
                            Http1Pool(upstream, limit=256, connect_timeout_s=5, read_timeout_s=60)
                        )
                    else:
                        session.append(aiohttp.ClientSession(skip_auto_headers=("User-Agent",)))
                    await send({"type": "lifespan.startup.complete"})
                else:
                    for opened in session:
                        await opened.close()
                    for pool in pools:
                        await pool.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            body, status = b"{}", 200
        else:
            message = await receive()
            if client == "lean":
                request = pools[0].encode("POST", scope["path"], headers, message.get("body", b""))
                answer = await pools[0].request(request, None)
                body, status = answer.body, answer.status
            else:
                async with session[0].post(
                    upstream + scope["path"], data=message.get("body", b""), headers=headers
                ) as response:
                    body, status = await response.read(), response.status
            orjson.loads(body)  # a forwarder that meters must at least parse the usage
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        loop="auto",
        http="auto",
    )


# ---------------------------------------------------------------- the processes under test


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=1)
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def started(
    command: list[str], ready_url: str, env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    output = log.open("wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_ready(ready_url, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def gateway_config(
    folder: Path, upstream: str, state: str = "memory", secret: str | None = None
) -> tuple[Path, str]:
    """A config in ``folder``; with Redis state the key lives in Redis (made once, passed on)."""
    sys.path.insert(0, str(ROOT / "src"))
    from tiergate.stores import open_key_store

    folder.mkdir(parents=True, exist_ok=True)
    if secret is None:
        store = open_key_store(state, folder / "keys.json")
        _, secret = store.create("bench", budget_usd_day=1e9)
    config = {
        "upstream": {"base_url": upstream, "api_key": FAKE_KEY, "max_retries": 2},
        "limits": {"default": {"rpm": 100_000_000, "itpm": 10**12, "otpm": 10**12}},
        "keys": "keys.json",
        "ledger": "sqlite:///ledger.db",
        "journal": "journal",
        "state": state,
        "routes": {},
    }
    path = folder / "gateway.yaml"
    path.write_bytes(orjson.dumps(config))  # JSON is YAML
    return path, secret


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str | None]:
    """A throwaway redis-server on a free port, or None when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(folder)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def litellm_config(folder: Path, upstream: str) -> Path:
    path = folder / "litellm.yaml"
    path.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: anthropic/{MODEL}\n"
        f"      api_base: {upstream}\n"
        f"      api_key: {FAKE_KEY}\n"
        "general_settings:\n"
        f"  master_key: {FAKE_KEY}\n"
        "litellm_settings:\n"
        "  set_verbose: false\n"
    )
    return path


# ---------------------------------------------------------------- the run


@dataclass
class Row:
    name: str
    saturated: dict[str, Any] | None = None
    at_rate: dict[str, Any] | None = None
    note: str = ""


def measure(name: str, port: int | str, key: str, args: argparse.Namespace) -> Row:
    say(f"{name}: saturating ({args.connections} connections)")
    saturated = load(
        port, key, "saturate", args.saturate_requests, args.seconds, connections=args.connections
    )
    say(f"{name}: {saturated['done'] / saturated['seconds']:,.0f} req/s; now {args.rate}/s")
    at_rate = load(
        port, key, "rate", args.rate_requests, args.rate_requests / args.rate + 5, rate=args.rate
    )
    return Row(name, saturated, at_rate)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_average() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def run(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="tiergate-bench-"))
    emulator_port, gateway_port, litellm_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{emulator_port}"
    tiergate = [PYTHON, "-m", "tiergate"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    loads = [load_average()]
    rows: list[Row] = []
    memory: tuple[float, float, int] | None = None
    with started(
        [*tiergate, "emulate", "--latency", "zero", "--port", str(emulator_port)],
        upstream + "/_tiergate/stats",
        env,
    ):
        rows.append(measure("direct (emulator)", emulator_port, FAKE_KEY, args))
        bare_port = free_port()
        with started(
            [PYTHON, __file__, "--bare", str(bare_port), "--upstream", upstream],
            f"http://127.0.0.1:{bare_port}/healthz",
            env,
        ):
            load(bare_port, FAKE_KEY, "saturate", 3000, 60, connections=args.connections)
            rows.append(measure("bare forwarder", bare_port, FAKE_KEY, args))
        lean_port = free_port()
        lean = ["--bare", str(lean_port), "--bare-client", "lean", "--upstream", upstream]
        with started(
            [PYTHON, __file__, *lean],
            f"http://127.0.0.1:{lean_port}/healthz",
            env,
        ):
            load(lean_port, FAKE_KEY, "saturate", 3000, 60, connections=args.connections)
            rows.append(measure("bare fwd, lean client", lean_port, FAKE_KEY, args))
        config, key = gateway_config(folder, upstream)
        with started(
            [*tiergate, "serve", "--config", str(config), "--port", str(gateway_port)],
            f"http://127.0.0.1:{gateway_port}/healthz",
            env,
            folder / "gateway.log",
        ) as gateway:
            load(gateway_port, key, "saturate", 5000, 60, connections=args.connections)  # warm up
            rows.append(measure("tiergate gateway", gateway_port, key, args))
            before = rss_mb(gateway.pid)
            say(f"gateway: {args.requests:,} requests for the memory check (RSS {before:.1f} MB)")
            soak = load(
                gateway_port,
                key,
                "saturate",
                args.requests,
                args.requests / 200 + 60,
                connections=args.connections,
            )
            time.sleep(1)  # let the last ledger batch land
            memory = (before, rss_mb(gateway.pid), soak["done"])
            soak_row = Row("gateway, soak", soak)
            soak_row.note = f"{soak['errors']} errors"
        rows += _redis_rows(args, folder, upstream, tiergate, env)
        rows.append(_litellm(args, folder, upstream, litellm_port))
    loads.append(load_average())
    print_table(rows, memory, loads, args, soak_row)
    shutil.rmtree(folder, ignore_errors=True)


def _redis_rows(
    args: argparse.Namespace, folder: Path, upstream: str, tiergate: list[str], env: dict[str, str]
) -> list[Row]:
    """One gateway with Redis state, then two on one Redis loaded together."""
    names = ("gateway, Redis state", "2 gateways, 1 Redis")
    with redis_server(folder) as redis_url:
        if redis_url is None:
            return [Row(name, note="redis-server not installed") for name in names]
        first, key = gateway_config(folder / "redis-1", upstream, redis_url)
        second, _ = gateway_config(folder / "redis-2", upstream, redis_url, key)
        ports = [free_port(), free_port()]
        rows = []
        with contextlib.ExitStack() as stack:
            for config, port in zip((first, second), ports, strict=True):
                stack.enter_context(
                    started(
                        [*tiergate, "serve", "--config", str(config), "--port", str(port)],
                        f"http://127.0.0.1:{port}/healthz",
                        env,
                        config.parent / "gateway.log",
                    )
                )
            load(ports[0], key, "saturate", 5000, 60, connections=args.connections)  # warm up
            rows.append(measure(names[0], ports[0], key, args))
            both = ",".join(str(port) for port in ports)
            load(both, key, "saturate", 5000, 60, connections=args.connections)
            rows.append(measure(names[1], both, key, args))
        return rows


def _litellm(args: argparse.Namespace, folder: Path, upstream: str, port: int) -> Row:
    binary = Path(args.litellm_venv) / "bin" / "litellm"
    if args.no_litellm:
        return Row("LiteLLM proxy", note="skipped (--no-litellm)")
    if not binary.exists():
        return Row("LiteLLM proxy", note=f"not installed ({binary} missing)")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    env.pop("PYTHONPATH", None)
    command = [
        str(binary),
        "--config",
        str(litellm_config(folder, upstream)),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--num_workers",
        "1",
    ]
    try:
        with started(
            command, f"http://127.0.0.1:{port}/health/liveliness", env, folder / "litellm.log"
        ):
            load(port, FAKE_KEY, "saturate", 200, 60, connections=4)  # warm up
            return measure("LiteLLM proxy", port, FAKE_KEY, args)
    except (RuntimeError, subprocess.SubprocessError, ValueError) as error:
        tail = (folder / "litellm.log").read_text(errors="replace")[-400:]
        return Row("LiteLLM proxy", note=f"could not run: {error}; log: {tail!r}")


def print_table(
    rows: list[Row],
    memory: tuple[float, float, int] | None,
    loads: list[str],
    args: argparse.Namespace,
    soak: Row,
) -> None:
    direct = rows[0].at_rate or {}
    print(
        f"\nload average (1/5/15 min) before {loads[0]}, after {loads[-1]}; "
        f"{os.cpu_count()} CPUs; {args.connections} connections saturated"
    )
    print(
        f"{'target':<20} {'saturated req/s':>15} {'p50 ms':>7} {'p99 ms':>7} "
        f"{f'@{args.rate:g}/s p50':>12} {'p99':>7} {'added p50':>10} {'added p99':>10}  note"
    )
    for row in rows:
        if row.saturated is None or row.at_rate is None:
            print(
                f"{row.name:<20} {'-':>15} {'-':>7} {'-':>7} {'-':>12} {'-':>7} {'-':>10} "
                f"{'-':>10}  {row.note}"
            )
            continue
        rate = row.saturated["done"] / row.saturated["seconds"]
        added50 = row.at_rate["p50_ms"] - direct.get("p50_ms", 0.0)
        added99 = row.at_rate["p99_ms"] - direct.get("p99_ms", 0.0)
        errors = row.saturated["errors"] + row.at_rate["errors"]
        unfinished = row.at_rate.get("unfinished", 0)
        note = row.note or ", ".join(
            text
            for text in (
                f"{errors} errors" if errors else "",
                f"{unfinished} unfinished at the rate" if unfinished else "",
            )
            if text
        )
        dash = "-"
        added = f"{dash:>10} {dash:>10}" if row is rows[0] else f"{added50:>10.2f} {added99:>10.2f}"
        print(
            f"{row.name:<20} {rate:>15,.0f} {row.saturated['p50_ms']:>7.2f} "
            f"{row.saturated['p99_ms']:>7.2f} {row.at_rate['p50_ms']:>12.2f} "
            f"{row.at_rate['p99_ms']:>7.2f} {added}  {note}"
        )
    if memory is not None:
        before, after, done = memory
        rate = soak.saturated["done"] / soak.saturated["seconds"] if soak.saturated else 0
        print(
            f"gateway RSS: {before:.1f} MB after warm-up, {after:.1f} MB after {done:,} more "
            f"requests ({(after - before) / before:+.1%}); soak ran at {rate:,.0f} req/s, "
            f"{soak.note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generate", choices=["saturate", "rate"], help=argparse.SUPPRESS)
    parser.add_argument("--port", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--requests",
        type=int,
        default=200_000,
        help="requests for the memory check (default %(default)s)",
    )
    parser.add_argument("--saturate-requests", type=int, default=30_000)
    parser.add_argument("--rate-requests", type=int, default=2_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rate", type=float, default=167.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="time cap per saturated run")
    parser.add_argument("--litellm-venv", default="/tmp/litellm-venv")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--bare-client", default="aiohttp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_forwarder(args.bare, args.upstream, args.bare_client)
    elif args.generate:
        args.mode = args.generate
        generate(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
