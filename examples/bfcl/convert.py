"""Write data/calibration.jsonl and data/test.jsonl from BFCL's single-turn categories.

    .venv/bin/python examples/bfcl/convert.py [--source ../shared/data/tools]

Calibrated categories: 60% of each goes to calibration, 40% to test (a held-out split per
category, drawn with a fixed seed). Held-out categories (the user-contributed ``live_*`` ones)
go to test whole: the router never sees them before it is scored on them. Live rows that share
a scenario group (``live_simple_<n>-<g>-<k>``) are never split, since they are not.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from tiergate.tasks.tool_bfcl import convert_row

CALIBRATED = ("simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance")
HELD_OUT = ("live_simple", "live_parallel", "live_parallel_multiple", "live_relevance")
CALIBRATION_SHARE = 0.6
SEED = 0
HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=HERE.parents[2] / "shared/data/tools")
    args = parser.parse_args()
    calibration: list[dict[str, object]] = []
    test: list[dict[str, object]] = []
    for category in (*CALIBRATED, *HELD_OUT):
        path = args.source / f"bfcl_{category}.jsonl"
        rows = [convert_row(json.loads(line)) for line in path.read_text().splitlines() if line]
        if category in HELD_OUT:
            test += rows
            continue
        random.Random(f"{SEED}|{category}").shuffle(rows)
        cut = round(len(rows) * CALIBRATION_SHARE)
        calibration += rows[:cut]
        test += rows[cut:]
    for name, rows in (("calibration", calibration), ("test", test)):
        target = HERE / "data" / f"{name}.jsonl"
        target.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        print(f"{target}: {len(rows):,} rows")


if __name__ == "__main__":
    main()
