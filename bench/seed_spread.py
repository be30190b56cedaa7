"""How much the calibration split decides: examples/banking77 re-fitted with route seeds 0..N-1.

The route's `seed` picks which training examples are held out for the Claude tiers'
calibration. For each seed: a copy of the route trained, calibrated (emulated Claude) and
evaluated on the test split; the table gives the local tier's share, the whole ladder's
accepted share and accuracy, and the saving against Sonnet-only, then each column's spread.

    .venv/bin/python bench/seed_spread.py                  # seeds 0-4
    .venv/bin/python bench/seed_spread.py --seeds 3 --work /tmp/seeds
    .venv/bin/python bench/seed_spread.py --refit          # same answers, after a fitting change

Claude answers are emulated, so their accuracy is the emulator's assumption; the local tier is
real.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from classify_route import tiergate  # a fresh process, the emulator, no key

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "banking77"
COLUMNS = ("local share", "accepted", "accepted accuracy", "saving vs Sonnet", "cost $")


def route_copy(work: Path, seed: int) -> Path:
    folder = work / f"seed-{seed}"
    if not (folder / "route.yaml").exists():
        shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("artifacts"))
    spec = folder / "route.yaml"
    lines = [line for line in spec.read_text().splitlines() if not line.startswith("seed:")]
    spec.write_text("\n".join([*lines, f"seed: {seed}"]) + "\n")
    return folder


def one_seed(work: Path, seed: int, refit: bool = False) -> dict[str, Any]:
    folder = route_copy(work, seed)
    if not (folder / "artifacts" / "local").is_dir():
        tiergate("train", str(folder))
    recorded = (folder / "artifacts" / "calibration_runs.json").exists()
    tiergate("calibrate", str(folder), *(["--refit"] if refit and recorded else []))
    result: dict[str, Any] = json.loads(tiergate("eval", str(folder), "--json").stdout)
    return {
        "seed": seed,
        "local share": result["tiers"]["local"]["accepted_share"],
        "accepted": result["accepted_share"],
        "accepted accuracy": result["accepted_accuracy"],
        "saving vs Sonnet": result["savings_vs_strong"],
        "cost $": result["cost_usd"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    def cell(column: str, value: float) -> str:
        return f"{value:.2f}" if column == "cost $" else f"{value:.2%}"

    lines = ["seed  " + "  ".join(f"{c:>17}" for c in COLUMNS)]
    for row in rows:
        lines.append(f"{row['seed']:>4}  " + "  ".join(f"{cell(c, row[c]):>17}" for c in COLUMNS))
    spread = []
    for column in COLUMNS:
        values = [row[column] for row in rows]
        spread.append(f"{cell(column, min(values))}-{cell(column, max(values))}")
    lines.append("range " + "  ".join(f"{s:>17}" for s in spread))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "bench" / "seeds")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument(
        "--refit", action="store_true", help="refit from a previous run's recorded answers"
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in range(args.seeds):
        rows.append(one_seed(args.work, seed, args.refit))
        print(f"seed {seed}: {rows[-1]}", file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
