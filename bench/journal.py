"""What the intent journal costs a request: an intent and a row, each a copy into a mapped file.

    .venv/bin/python bench/journal.py            # 50,000 requests

Prints microseconds per request for the journal's two appends beside the in-memory append the
ledger does anyway, in one run (timings on a shared machine are noisy; compare the ratio).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from tiergate.stores.journal import Intent, Journal
from tiergate.stores.ledger import LedgerRow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    count = parser.parse_args().requests
    folder = Path(tempfile.mkdtemp(prefix="tiergate-journal-"))
    journal = Journal(folder, "bench")
    model = "claude-haiku-4-5"
    row = LedgerRow(
        "req", 1.0, "2026-11-24", "key_1", "direct", "direct", model, model, 200, "ok",
        False, False, 20, 30, 0, 0, 0, 0.00017, 0.0005, 1.2, None,
    )  # fmt: skip
    pending: list[tuple[object, ...]] = []
    started = time.perf_counter()
    for _ in range(count):
        pending.append(row.values())
    memory_s = time.perf_counter() - started
    started = time.perf_counter()
    for index in range(count):
        request_id = f"req_{index}"
        journal.intend(Intent(request_id, 1.0, "2026-11-24", "key_1", "direct", model, 0.0002))
        journal.row(request_id, row.values())
    journal_s = time.perf_counter() - started
    journal.close(everything_written=True)
    shutil.rmtree(folder, ignore_errors=True)
    print(f"{'what':<40} {'us/request':>10}")
    print(f"{'ledger row in memory (always)':<40} {memory_s / count * 1e6:>10.2f}")
    print(f"{'journal: intent + row, two write(2)':<40} {journal_s / count * 1e6:>10.2f}")


if __name__ == "__main__":
    main()
