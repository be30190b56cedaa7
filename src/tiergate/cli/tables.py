"""Tables for the commands' plain-text output, drawn by ``rich`` (imported when a table is).

One formatter instead of hand-padded columns: headers, rows of already formatted cells, and
which columns are numbers (right-aligned). The text has no colour codes, so it reads the same
in a terminal, a pipe or a log; ``--json`` output never goes through here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

WIDTH = 160  # wide enough that no table of ours wraps


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: Sequence[bool] | None = None,
) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for index, name in enumerate(headers):
        right = numeric is not None and numeric[index]
        table.add_column(name, justify="right" if right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    buffer = io.StringIO()
    Console(file=buffer, width=WIDTH, color_system=None, force_terminal=False).print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()).strip("\n")
