"""The gateway's classification route at the lesson's rate: 10,000 tickets a minute.

For each local-tier variant (ONNX int8, the default; the same model on torch; the static
encoder as the documented fallback): a copy of examples/banking77 trained and calibrated with
it, served by `tiergate serve`, with the emulator upstream in its own process at realistic
latency; a load generator in its own process offers --rate requests a second (open loop: each
request is due at its time, whatever the earlier ones are doing) for --seconds, each a BANKING77
test ticket sent as a Messages request to the route. Per variant: completed per second, p50 and
p99 latency from when each request was due, the gateway's CPU per request, the share that
climbed to a Claude tier, and the gateway's peak memory. `in s` runs from the first request
due to the last answer, so it includes the last escalations' Claude latency: when every
offered request is answered, the route kept the offered rate.

    .venv/bin/python bench/classify_route.py                      # 167/s for 20 s per variant
    .venv/bin/python bench/classify_route.py --variants onnx --seconds 60
    .venv/bin/python bench/classify_route.py --reuse --concurrency 32   # the route default

Claude answers are emulated (realistic latency: Haiku ~0.6 s, Sonnet ~2.3 s per call).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulk import free_port, start_emulator, write_scenario

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "banking77"
PYTHON = sys.executable
FAKE_KEY = "sk-test-bench-not-a-real-key"
VARIANTS = {
    "onnx": {"encoder": "all-MiniLM-L6-v2", "runtime": "onnx", "quantize": "int8"},
    "torch": {"encoder": "all-MiniLM-L6-v2", "runtime": "torch"},
    "static": {"encoder": "static:all-MiniLM-L6-v2"},
}


@dataclass
class Row:
    variant: str
    offered: int
    completed: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float
    escalated_share: float
    peak_rss_mb: float


# ---------------------------------------------------------------- load generator (own process)


def texts() -> list[str]:
    with (EXAMPLE / "data" / "banking77_test.csv").open(newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


async def offer(port: int, rate: float, seconds: float) -> dict[str, Any]:
    import aiohttp

    pool = texts()
    latencies: list[float] = []
    errors = 0
    headers = {"x-api-key": FAKE_KEY, "anthropic-version": "2023-06-01"}
    connector = aiohttp.TCPConnector(limit=1024)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(index: int, due: float) -> None:
            nonlocal errors
            body = {
                "model": "tickets",
                "max_tokens": 64,
                "messages": [{"role": "user", "content": pool[index % len(pool)]}],
            }
            try:
                async with session.post(
                    f"http://127.0.0.1:{port}/v1/messages", json=body
                ) as response:
                    await response.read()
                    errors += response.status != 200
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - due)

        loop = asyncio.get_running_loop()
        start = time.perf_counter() + 0.1
        tasks = []
        count = int(rate * seconds)
        for index in range(count):
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(loop.create_task(one(index, due)))
        _, pending = await asyncio.wait(tasks, timeout=60)
        for task in pending:
            task.cancel()
        elapsed = time.perf_counter() - start
    ordered = sorted(latencies) or [float("nan")]
    return {
        "offered": count,
        "completed": len(latencies) - errors,
        "errors": errors + len(pending),
        "seconds": elapsed,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


# ---------------------------------------------------------------- one variant


def tiergate(*arguments: str, **extra: Any) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("ANTHROPIC_API_KEY", None)
    env.pop("ANTHROPIC_BASE_URL", None)
    done = subprocess.run(
        [PYTHON, "-m", "tiergate", *arguments],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        **extra,
    )
    if done.returncode != 0:
        raise SystemExit(f"tiergate {' '.join(arguments)} failed: {done.stderr[-800:]}")
    return done


def prepare(variant: str, work: Path, reuse: bool) -> Path:
    """A copy of examples/banking77 with the variant's local tier, trained and calibrated."""
    folder = work / f"banking77-{variant}"
    calibrated = folder / "artifacts" / "calibration.json"
    if reuse and calibrated.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copytree(EXAMPLE / "data", folder / "data")
    shutil.copy(EXAMPLE / "labels.yaml", folder / "labels.yaml")
    lines = (EXAMPLE / "route.yaml").read_text().split("\n")
    kept = lines[: next(i for i, line in enumerate(lines) if line.startswith("local:"))]
    settings = "\n".join(f"  {key}: {value}" for key, value in VARIANTS[variant].items())
    (folder / "route.yaml").write_text("\n".join(kept) + f"\nlocal:\n{settings}\n")
    say(f"[{variant}] training")
    tiergate("train", str(folder))
    say(f"[{variant}] calibrating (emulated Claude)")
    tiergate("calibrate", str(folder), "--emulate")
    return folder


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(variant: str, route: Path, upstream: str, args: argparse.Namespace) -> Row:
    folder = route.parent / f"gateway-{variant}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    config = folder / "gateway.yaml"
    config.write_text(
        f"upstream: {{base_url: '{upstream}', api_key: {FAKE_KEY}, max_retries: 2}}\n"
        "limits: {default: {rpm: 100000, itpm: 100000000, otpm: 10000000}}\n"
        "keys: keys.json\nledger: sqlite:///ledger.db\n"
        f"routes: {{tickets: {{kind: classify, route: {route / 'route.yaml'}, "
        f"concurrency: {args.concurrency}}}}}\n"
    )
    created = tiergate("keys", "create", "--config", str(config), "--name", "bench")
    key = next(word for word in created.stdout.split() if word.startswith("sk-tg-"))
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", ANTHROPIC_API_KEY=FAKE_KEY)
    server = subprocess.Popen(
        [PYTHON, "-m", "tiergate", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "serve.log").open("w"),
        env=env,
    )
    try:
        wait_ready(port, server)
        # Warm-up: the first predictions load the encoder's kernels.
        generate(port, key, rate=20, seconds=3)
        before = cpu_seconds(server.pid)
        result = generate(port, key, rate=args.rate, seconds=args.seconds)
        used = cpu_seconds(server.pid) - before
        rss = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    with sqlite3.connect(folder / "ledger.db") as ledger:
        rows = ledger.execute("SELECT tier FROM requests ORDER BY at").fetchall()
    measured = rows[-result["offered"] :] if rows else []
    climbed = sum(1 for (tier,) in measured if tier and tier != "local")
    return Row(
        variant,
        result["offered"],
        result["completed"],
        result["errors"],
        result["seconds"],
        result["p50_ms"],
        result["p99_ms"],
        used / max(result["completed"], 1) * 1000,
        climbed / len(measured) if measured else float("nan"),
        rss,
    )


def generate(port: int, key: str, *, rate: float, seconds: float) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, __file__, "--generate", str(port), "--key", key, "--rate", str(rate),
         "--seconds", str(seconds)],
        capture_output=True, text=True, check=False, timeout=seconds + 120,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"load generator failed: {done.stderr[-600:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def wait_ready(port: int, process: subprocess.Popen[bytes], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"tiergate serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("tiergate serve did not start")


def say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="onnx,torch,static")
    parser.add_argument("--rate", type=float, default=10_000 / 60)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=512,
        help="the route's Claude calls in flight (a route's default, 32, caps it near 40/s)",
    )
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "bench" / "classify-route")
    parser.add_argument("--reuse", action="store_true", help="keep trained copies from a run")
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        global FAKE_KEY
        FAKE_KEY = args.key
        print(json.dumps(asyncio.run(offer(args.generate, args.rate, args.seconds))))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    scenario = args.work / "scenario.json"
    write_scenario(scenario)
    emulator_args = argparse.Namespace(latency="realistic", rpm=100_000, seed=7, batch_seconds=5.0)
    rows = []
    for variant in args.variants.split(","):
        route = prepare(variant, args.work, args.reuse)
        emulator, upstream = start_emulator(emulator_args, scenario)
        try:
            say(f"[{variant}] {args.rate:.0f} requests/s for {args.seconds:.0f} s")
            rows.append(measure(variant, route, upstream, args))
        finally:
            emulator.terminate()
            emulator.wait(timeout=30)
    print_table(rows, args)


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    load = os.getloadavg()
    print(
        f"\nclassification route, {args.rate:.0f} requests/s offered for {args.seconds:.0f} s "
        f"(load average {load[0]:.1f} after, {os.cpu_count()} CPUs)\n"
    )
    print(
        f"{'local tier':<12} {'offered':>8} {'answered':>9} {'in s':>6} {'done/s':>8} "
        f"{'errors':>7} {'p50 ms':>8} {'p99 ms':>9} {'CPU ms/req':>11} {'climbed':>8} "
        f"{'peak MB':>8}"
    )
    reference = next((row for row in rows if row.variant == "torch"), None)
    for row in rows:
        rate = row.completed / row.seconds if row.seconds else 0.0
        print(
            f"{row.variant:<12} {row.offered:>8,} {row.completed:>9,} {row.seconds:>6.1f} "
            f"{rate:>8.1f} {row.errors:>7} {row.p50_ms:>8.1f} "
            f"{row.p99_ms:>9.1f} {row.cpu_ms_per_request:>11.2f} {row.escalated_share:>8.1%} "
            f"{row.peak_rss_mb:>8.0f}"
        )
    if reference is not None:
        for row in rows:
            if row is not reference and reference.cpu_ms_per_request:
                ratio = reference.cpu_ms_per_request / row.cpu_ms_per_request
                print(f"  {row.variant}: {ratio:.1f}x less CPU per request than torch")


if __name__ == "__main__":
    main()
