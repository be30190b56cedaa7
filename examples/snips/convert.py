"""Make data/ from the shared SNIPS copy: the 700 test rows and a stratified 500 train rows per
intent (seeded), as JSONL rows {"id", "text", "label": {"intent", "slots"}}.

    python examples/snips/convert.py ../shared/data/extraction
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

PER_INTENT = 500
SEED = 0


def rows(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def convert(row: dict[str, object]) -> dict[str, object]:
    return {"id": row["id"], "text": row["text"], "label": row["fields"]}


def main(source: Path) -> None:
    target = Path(__file__).parent / "data"
    target.mkdir(exist_ok=True)
    train = rows(source / "snips_train.jsonl")
    by_intent: dict[str, list[dict[str, object]]] = {}
    for row in train:
        by_intent.setdefault(row["fields"]["intent"], []).append(row)  # type: ignore[index]
    chosen = []
    rng = random.Random(SEED)
    for intent in sorted(by_intent):
        chosen += rng.sample(by_intent[intent], PER_INTENT)
    rng.shuffle(chosen)
    for name, picked in (("snips_train.jsonl", chosen), ("snips_test.jsonl", rows(source / "snips_test.jsonl"))):
        with (target / name).open("w", encoding="utf-8") as handle:
            for row in picked:
                handle.write(json.dumps(convert(row), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
