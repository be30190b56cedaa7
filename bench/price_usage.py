"""How much does pricing one request cost? The gateway and the ledger call it on every request.

Prints a table of nanoseconds per call for: building a Usage from an API usage dict, pricing it,
and both together, side by side with a bare dict lookup as the yardstick.

    .venv/bin/python bench/price_usage.py [--calls N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from tiergate.core.cost import price_usage
from tiergate.core.prices import load_price_book
from tiergate.core.usage import Usage

API_USAGE = {
    "input_tokens": 412,
    "output_tokens": 18,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 4096,
}


def measure(function: Callable[[], object], calls: int) -> float:
    """Best of three runs, in nanoseconds per call."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter_ns()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter_ns() - start) / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    book = load_price_book(use_env=False)
    haiku = book.get("claude-haiku-4-5")
    usage = Usage.from_api(API_USAGE)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("dict lookup (yardstick)", lambda: API_USAGE["input_tokens"]),
        ("Usage.from_api", lambda: Usage.from_api(API_USAGE)),
        ("price_usage", lambda: price_usage(usage, haiku)),
        ("from_api + price_usage", lambda: price_usage(Usage.from_api(API_USAGE), haiku).total_usd),
        ("book.get(alias)", lambda: book.get("claude-haiku-4-5-20251001")),
    ]
    results = [(name, measure(function, args.calls)) for name, function in cases]
    yardstick = results[0][1]
    print(f"{'case':<26} {'ns/call':>9} {'x yardstick':>12} {'calls/s':>12}")
    for name, nanoseconds in results:
        print(
            f"{name:<26} {nanoseconds:>9.0f} {nanoseconds / yardstick:>12.1f} "
            f"{1e9 / nanoseconds:>12,.0f}"
        )


if __name__ == "__main__":
    main()
