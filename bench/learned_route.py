"""What a learned route costs the gateway: latency and throughput beside a rules route.

A pre-call router is trained on --train RouterBench train records (claude-instant-v1 ->
gpt-4-1106-preview, read from --data, never copied) with MiniLM and served by a gateway in this
process as `kind: learned` (Haiku / Sonnet), with a zero-latency emulator upstream. The same
--requests RouterBench test prompts go, closed loop at each --concurrency, through the learned
route and through a rules route (no router) for comparison. Per run: requests a second, p50 and
p99 latency, the share sent to the strong tier, and the router's mean batch.

    .venv/bin/python bench/learned_route.py --data ../shared/data/routing

Client, gateway and emulator share one process (and the GIL), so absolute figures are higher
than a deployed gateway's; the difference between the two routes is the router's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anthropic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tiergate.emulator import EmulatorConfig, EmulatorServer  # noqa: E402
from tiergate.encoders import load_encoder  # noqa: E402
from tiergate.gateway import GatewayServer, KeyStore, parse_config  # noqa: E402
from tiergate.precall import TrainOptions, load_split, train_router  # noqa: E402

CHEAP, STRONG = "claude-instant-v1", "gpt-4-1106-preview"
HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"
FAKE_KEY = "sk-test-bench-not-a-real-key"


async def run(
    base_url: str, key: str, route: str, prompts: list[str], concurrency: int
) -> tuple[float, list[float], int]:
    """Requests a second, latencies (s), and how many went to the strong tier."""
    queue = list(prompts)
    latencies: list[float] = []
    strong = 0
    async with anthropic.AsyncAnthropic(api_key=key, base_url=base_url, max_retries=0) as client:

        async def worker() -> None:
            nonlocal strong
            while queue:
                prompt = queue.pop()
                started = time.perf_counter()
                raw = await client.messages.with_raw_response.create(
                    model=route, max_tokens=16, messages=[{"role": "user", "content": prompt}]
                )
                latencies.append(time.perf_counter() - started)
                strong += raw.headers.get("x-tiergate-tier") == "strong"

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return len(prompts) / elapsed, latencies, strong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "routing")
    parser.add_argument("--train", type=int, default=300, help="train records per file")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()

    records = load_split(args.data, "train", limit_per_file=args.train // 2)
    options = TrainOptions(CHEAP, STRONG, quality=0.95, seconds=(), bootstraps=500)
    artifact = train_router(records, load_encoder(), options)
    prompts = [r.prompt for r in load_split(args.data, "test")][: args.requests]
    with (
        tempfile.TemporaryDirectory() as folder,
        EmulatorServer(EmulatorConfig(seed=1, latency_scale=0.0)) as emulator,
    ):
        base = Path(folder)
        artifact.save(base / "router")
        _, key = KeyStore(base / "keys.json").create("bench")
        tiers = {"cheap": HAIKU, "strong": SONNET}
        config = {
            "upstream": {"base_url": emulator.base_url, "api_key": FAKE_KEY},
            "keys": "keys.json",
            "ledger": "sqlite:///ledger.db",
            "routes": {
                "chat": {"kind": "learned", "router": "router", "tiers": tiers},
                "auto": {"kind": "rules", "tiers": tiers},
            },
        }
        with GatewayServer(parse_config(config, base, {})) as gateway:
            rows = []
            for concurrency in args.concurrency:
                for route in ("auto", "chat"):
                    asyncio.run(run(gateway.base_url, key, route, prompts[:8], 2))  # warm up
                    chooser = gateway.app.services.learned["chat"]
                    before = chooser.stats
                    rate, latencies, strong = asyncio.run(
                        run(gateway.base_url, key, route, prompts, concurrency)
                    )
                    after = chooser.stats
                    batches = after.batches - before.batches
                    cuts = statistics.quantiles(latencies, n=100)
                    rows.append(
                        {
                            "route": f"{route} ({'learned' if route == 'chat' else 'rules'})",
                            "concurrency": concurrency,
                            "req_per_s": rate,
                            "p50_ms": cuts[49] * 1000,
                            "p99_ms": cuts[98] * 1000,
                            "to_strong": strong / len(prompts),
                            "mean_batch": (after.texts - before.texts) / batches
                            if batches
                            else None,
                        }
                    )
    print(f"router: trained on {len(records)} records; {len(prompts)} test prompts per run")
    print(
        f"{'route':<16} {'conc.':>5} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'strong':>7} {'batch':>6}"
    )
    for row in rows:
        batch = "-" if row["mean_batch"] is None else f"{row['mean_batch']:.1f}"
        print(
            f"{row['route']:<16} {row['concurrency']:>5} {row['req_per_s']:>7.1f} "
            f"{row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['to_strong']:>7.1%} {batch:>6}"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
