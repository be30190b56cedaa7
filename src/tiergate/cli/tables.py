"""Every table the commands print, drawn by ``rich`` (imported when a table is drawn).

One formatter instead of hand-padded columns: headers, rows of already formatted cells, which
columns are numbers (right-aligned), and an indent. A rule of dashes under each header, columns
two spaces apart, no colour codes, never wrapped: it reads the same in a terminal, a pipe or a
log. ``--json`` output never goes through here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

WIDTH = 1000  # no table of ours is wrapped: a long label widens its column instead

GAP = 1  # padding on each side of a cell: columns two spaces apart


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: Sequence[bool] | None = None,
    indent: int = 0,
) -> str:
    """The table as text lines (no trailing newline); ``numeric[i]`` right-aligns column i."""
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table

    if numeric is not None and len(numeric) != len(headers):
        raise ValueError(f"numeric has {len(numeric)} entries for {len(headers)} columns")
    table = Table(box=None, show_header=True, pad_edge=False, padding=(0, GAP))
    for index, name in enumerate(headers):
        right = numeric is not None and numeric[index]
        table.add_column(name, justify="right" if right else "left", no_wrap=True)
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"a row has {len(row)} cells for {len(headers)} columns: {row}")
    # The rule under the headers: dashes as wide as each column (its widest cell); none under
    # a column with no header (marks such as "<- chosen").
    table.add_row(
        *(
            "-" * max(cell_len(cell) for cell in [name, *(row[index] for row in rows)])
            if name
            else ""
            for index, name in enumerate(headers)
        )
    )
    for row in rows:
        table.add_row(*row)
    buffer = io.StringIO()
    Console(file=buffer, width=WIDTH, color_system=None, force_terminal=False).print(table)
    margin = " " * indent
    lines = buffer.getvalue().strip("\n").splitlines()
    return "\n".join((margin + line).rstrip() for line in lines)
