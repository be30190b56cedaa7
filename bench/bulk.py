"""Bulk routing benchmark: `tiergate batch` on N resampled BANKING77 tickets.

Starts `tiergate emulate` in its own process (realistic latency, RPM limit per model), then:
1. one uninterrupted live run: wall time, rows/s, sustained upstream requests/s, peak RSS;
2. the same file killed with SIGKILL at three random moments and resumed each time: the output
   must equal the uninterrupted run's (zero rows lost, zero duplicated, the same answers);
3. batches mode on the same file: cost against live mode.

    .venv/bin/python bench/bulk.py --rows 100000          # the issue's figures
    .venv/bin/python bench/bulk.py --rows 5000            # a quick run

The route must be trained and calibrated first (see docs/bulk.md). Emulated answers: costs are
priced from emulated token usage, accuracies are the emulator's assumptions.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "banking77" / "data"
ANSWER_FIELDS = ("id", "line", "label", "tier", "confidence", "accepted", "escalated")


@dataclass
class Run:
    name: str
    seconds: float
    peak_rss_mb: float
    summary: dict[str, Any]


def tickets() -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for name in ("banking77_train.csv", "banking77_test.csv"):
        with (DATA / name).open(newline="") as handle:
            rows += [(r["text"], r["category"]) for r in csv.DictReader(handle)]
    return rows


def write_input(path: Path, rows: int, seed: int) -> None:
    pool = tickets()
    pick = random.Random(seed)
    with path.open("w") as handle:
        for index in range(rows):
            text, label = pick.choice(pool)
            handle.write(json.dumps({"id": f"t{index}", "text": text, "label": label}) + "\n")


def write_scenario(path: Path) -> None:
    from tiergate.emulator.scenario_build import scenario_dict

    path.write_text(json.dumps(scenario_dict(tickets(), name="banking77")))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_emulator(args: argparse.Namespace, scenario: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable, "-m", "tiergate", "emulate", "--port", str(port),
        "--latency", args.latency, "--rpm", str(args.rpm), "--seed", str(args.seed),
        "--scenario", str(scenario), "--batch-seconds", str(args.batch_seconds),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the emulator did not start")


class LineCounter:
    """Counts whole lines of a growing file, reading only what is new."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines = 0

    def count(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            block = handle.read()
        whole = block.rfind(b"\n") + 1
        self.lines += block[:whole].count(b"\n")
        self.offset += whole
        return self.lines


def batch(args: argparse.Namespace, source: Path, out: Path, base_url: str, mode: str) -> list[str]:
    return [
        sys.executable, "-m", "tiergate", "batch", str(args.route), "--in", str(source),
        "--out", str(out), "--base-url", base_url, "--mode", mode, "--rpm", str(args.rpm),
        "--concurrency", str(args.concurrency), "--no-progress", "--json",
    ]  # fmt: skip


def run(command: list[str], log: Path, kill_at_rows: int | None = None) -> tuple[float, float]:
    """Run to the end (or SIGKILL once the output has ``kill_at_rows`` rows): seconds, peak MB."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("ANTHROPIC_API_KEY", None)
    started = time.perf_counter()
    with log.open("w") as stdout:
        process = subprocess.Popen(command, stdout=stdout, stderr=subprocess.DEVNULL, env=env)
        if kill_at_rows is not None:
            counter = LineCounter(Path(command[command.index("--out") + 1]))
            while process.poll() is None and counter.count() < kill_at_rows:
                time.sleep(0.05)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if kill_at_rows is None and process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with {process.returncode}; see {log}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def answers(path: Path) -> list[tuple[Any, ...]]:
    with path.open() as handle:
        return [tuple(json.loads(raw)[f] for f in ANSWER_FIELDS) for raw in handle]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", type=Path, default=ROOT / "out/bench/banking77-static")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rpm", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency", default="realistic")
    parser.add_argument("--batch-seconds", type=float, default=5.0)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=ROOT / "out/bench/bulk")
    parser.add_argument("--skip-batches", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for stale in args.work.glob("*"):
        if stale.is_dir():
            for inner in stale.glob("*"):
                inner.unlink()
            stale.rmdir()
        else:
            stale.unlink()
    source, scenario = args.work / "in.jsonl", args.work / "scenario.json"
    write_input(source, args.rows, args.seed)
    write_scenario(scenario)
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (2-core machine)")
    emulator, base_url = start_emulator(args, scenario)
    runs: list[Run] = []
    try:
        out = args.work / "live.jsonl"
        seconds, rss = run(batch(args, source, out, base_url, "live"), args.work / "live.log")
        runs.append(Run("live, uninterrupted", seconds, rss, _summary(args.work / "live.log")))

        if args.kills > 0:  # --kills 0: the uninterrupted run alone
            killed = args.work / "killed.jsonl"
            command = batch(args, source, killed, base_url, "live")
            pick = random.Random(args.seed + 1)
            # One random moment in each part of the file, so that every kill falls in new work.
            part = args.rows // args.kills
            moments = [
                pick.randint(part * k + part // 10, part * (k + 1) - part // 10)
                for k in range(args.kills)
            ]
            total_s, peak, calls = 0.0, 0.0, 0
            served_before = _served(base_url)
            for number, rows in enumerate(moments):
                log = args.work / f"killed-{number}.log"
                seconds, rss = run(command, log, kill_at_rows=rows)
                total_s, peak = total_s + seconds, max(peak, rss)
                print(f"  killed after {rows:,} rows written ({seconds:.1f} s)")
            seconds, rss = run(command, args.work / "resumed.log")
            summary = _summary(args.work / "resumed.log")
            journal = args.work / "killed.jsonl.state" / "journal.jsonl"
            with journal.open() as handle:
                calls = sum(1 for raw in handle if '"k":"answer"' in raw)
            summary["upstream_calls_this_run"] = calls
            served = _served(base_url) - served_before
            print(
                f"  the emulator served {served:,} requests across the killed and resumed runs for "
                f"{calls:,} recorded answers: {served - calls:,} were in flight at a kill (or 429s)"
            )
            runs.append(
                Run(
                    f"live, {args.kills} x kill -9 + resume",
                    total_s + seconds,
                    max(peak, rss),
                    summary,
                )
            )
            _compare(answers(out), answers(killed))

        if not args.skip_batches:
            out_b = args.work / "batches.jsonl"
            log = args.work / "batches.log"
            seconds, rss = run(batch(args, source, out_b, base_url, "batches"), log)
            runs.append(Run("batches", seconds, rss, _summary(log)))
            _compare(answers(out), answers(out_b), what="batches mode vs live")
    finally:
        emulator.send_signal(signal.SIGINT)
        emulator.wait(timeout=30)
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    _table(args, runs)


def _served(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/_tiergate/stats", timeout=10) as response:
        return int(json.loads(response.read())["requests"])


def _summary(log: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(log.read_text())
    return body


def _compare(
    expected: list[tuple[Any, ...]],
    got: list[tuple[Any, ...]],
    what: str = "resumed vs uninterrupted",
) -> None:
    ids = [row[0] for row in got]
    lost = len({row[0] for row in expected} - set(ids))
    duplicated = len(ids) - len(set(ids))
    differing = sum(a != b for a, b in zip(expected, got, strict=False))
    verdict = "IDENTICAL" if expected == got else "DIFFERENT"
    print(
        f"{what}: {verdict} ({len(got):,} rows, {lost} lost, {duplicated} duplicated, "
        f"{differing} answers differ)"
    )


def _table(args: argparse.Namespace, runs: list[Run]) -> None:
    print(
        f"\n{args.rows:,} tickets, route {args.route.name}, emulator --latency {args.latency} "
        f"--rpm {args.rpm:,} per model, --concurrency {args.concurrency}"
    )
    head = (
        f"{'run':<32} {'wall s':>8} {'rows/s':>8} {'upstream/s':>10} {'peak RSS MB':>11} "
        f"{'cost $':>10} {'escalated':>9}"
    )
    print(head)
    print("-" * len(head))
    for item in runs:
        s = item.summary
        upstream = s["upstream_calls_this_run"] / item.seconds
        escalated = s["escalation_rate"]
        print(
            f"{item.name:<32} {item.seconds:>8.1f} {s['rows'] / item.seconds:>8.1f} "
            f"{upstream:>10.1f} {item.peak_rss_mb:>11.0f} {s['cost_usd']:>10.2f} {escalated:>9.1%}"
        )
    live = runs[0].summary
    print(
        f"\nlive cost ${live['cost_usd']:,.2f}; "
        + "; ".join(
            f"{name}-only ${body['cost_usd']:,.2f} (tiered saves {body['saving']:.1%})"
            for name, body in live["only"].items()
        )
    )
    if len(runs) > 2:
        batches = runs[2].summary
        print(
            f"batches mode ${batches['cost_usd']:,.2f} vs live ${live['cost_usd']:,.2f}: "
            f"{1 - batches['cost_usd'] / live['cost_usd']:.1%} cheaper"
        )


if __name__ == "__main__":
    main()
