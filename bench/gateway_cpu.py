"""CPU time per request of a saturated gateway process: this tree against another revision.

On a shared machine a request rate moves with everyone else's load; the CPU seconds the gateway
process itself spends per request move much less, so this compares two versions by that, in
alternating rounds in one run:

    .venv/bin/python bench/gateway_cpu.py --base dee6346 --rounds 3

The other revision's ``src`` is taken with ``git archive`` into a temporary folder (no checkout).
Each round starts a fresh gateway (bench/gateway.py's config: auth, limits, budget, ledger on),
warms it with 3,000 requests, then counts its CPU over ``--requests`` saturated ones.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

from gateway import ROOT, free_port, gateway_config, load, started


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def export(revision: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="tiergate-base-"))
    archive = subprocess.run(
        ["git", "archive", revision, "src"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder / "src"


def one_round(src: Path, upstream: str, requests: int, older: bool) -> tuple[float, float]:
    folder = Path(tempfile.mkdtemp(prefix="tiergate-cpu-"))
    config, key = gateway_config(folder, upstream)
    if older:  # settings an older revision may not know
        raw = orjson.loads(config.read_bytes())
        for name in ("journal", "state"):
            raw.pop(name, None)
        config.write_bytes(orjson.dumps(raw))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "tiergate", "serve", "--config", str(config)]
    with started(
        [*command, "--port", str(port)], f"http://127.0.0.1:{port}/healthz", env, folder / "log"
    ) as process:
        load(port, key, "saturate", 3000, 60, connections=50)
        before = cpu_seconds(process.pid)
        done = load(port, key, "saturate", requests, 120, connections=50)
        used = cpu_seconds(process.pid) - before
    return used / done["done"] * 1e6, done["done"] / done["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    trees = {f"base {args.base}": export(args.base), "this tree": ROOT / "src"}
    port = free_port()
    upstream = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    emulate = [sys.executable, "-m", "tiergate", "emulate", "--latency", "zero"]
    with started([*emulate, "--port", str(port)], upstream + "/_tiergate/stats", env):
        for _ in range(args.rounds):
            for name, src in trees.items():
                results[name].append(one_round(src, upstream, args.requests, name != "this tree"))
    print(f"load average {'/'.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    print(f"{'gateway':<22} {'CPU us/request (median)':>24} {'rounds':>30}")
    for name, values in results.items():
        cpu = sorted(value[0] for value in values)
        rounds = ", ".join(f"{value[0]:.0f}" for value in values)
        print(f"{name:<22} {cpu[len(cpu) // 2]:>24.0f} {rounds:>30}")


if __name__ == "__main__":
    main()
