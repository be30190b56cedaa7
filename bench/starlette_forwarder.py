"""Raw ASGI against Starlette for the gateway's hot path: the same forwarder both ways.

The bare forwarder of bench/gateway.py (raw ASGI + aiohttp + orjson) beside the same forwarder
written as a Starlette app (a ``Route``, ``Request.body()``, a ``Response``), each in its own
process in front of the emulator; per round, CPU seconds per request of each forwarder process
over ``--requests`` saturated requests (CPU moves less with other jobs than a rate does).
Starlette is not a dependency of tiergate (this measurement is why): ``pip install starlette``.

    .venv/bin/python bench/starlette_forwarder.py --rounds 3 --requests 6000
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from gateway import FAKE_KEY, PYTHON, free_port, load, started
from gateway_cpu import cpu_seconds


def starlette_forwarder(port: int, upstream: str) -> None:
    import contextlib

    import aiohttp
    import orjson
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    session: list[aiohttp.ClientSession] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        session.append(aiohttp.ClientSession(skip_auto_headers=("User-Agent",)))
        yield
        await session[0].close()

    async def healthz(request: Request) -> Response:
        return Response(b"{}", media_type="application/json")

    async def messages(request: Request) -> Response:
        async with session[0].post(
            upstream + request.url.path,
            data=await request.body(),
            headers={
                "x-api-key": FAKE_KEY,
                "content-type": "application/json",
                "anthropic-version": "2023-06-01",
            },
        ) as response:
            body, status = await response.read(), response.status
        orjson.loads(body)
        return Response(body, status_code=status, media_type="application/json")

    app = Starlette(
        routes=[Route("/healthz", healthz), Route("/v1/messages", messages, methods=["POST"])],
        lifespan=lifespan,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        starlette_forwarder(args.serve, args.upstream)
        return
    here = os.path.dirname(os.path.abspath(__file__))
    port = free_port()
    upstream = f"http://127.0.0.1:{port}"
    emulate = [PYTHON, "-m", "tiergate", "emulate", "--latency", "zero", "--port", str(port)]
    forwarders = {
        "raw ASGI": [PYTHON, os.path.join(here, "gateway.py"), "--bare"],
        "Starlette": [PYTHON, os.path.abspath(__file__), "--serve"],
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in forwarders}
    with started(emulate, upstream + "/_tiergate/stats", dict(os.environ)):
        for _ in range(args.rounds):
            for name, command in forwarders.items():
                own = free_port()
                with started(
                    [*command, str(own), "--upstream", upstream],
                    f"http://127.0.0.1:{own}/healthz",
                    dict(os.environ),
                ) as process:
                    load(own, FAKE_KEY, "saturate", 2000, 60, connections=50)
                    before = cpu_seconds(process.pid)
                    done = load(own, FAKE_KEY, "saturate", args.requests, 120, connections=50)
                    used = cpu_seconds(process.pid) - before
                results[name].append((used / done["done"] * 1e6, done["done"] / done["seconds"]))
    print(f"load average {'/'.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    print(f"{'forwarder':<12} {'CPU us/request (median)':>24} {'req/s (median)':>15}  rounds (us)")
    for name, values in results.items():
        cpu = sorted(value[0] for value in values)[len(values) // 2]
        rate = sorted(value[1] for value in values)[len(values) // 2]
        rounds = ", ".join(f"{value[0]:.0f}" for value in values)
        print(f"{name:<12} {cpu:>24.0f} {rate:>15,.0f}  {rounds}")


if __name__ == "__main__":
    main()
