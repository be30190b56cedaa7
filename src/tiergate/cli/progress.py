"""Progress bars on stderr for the long commands: train, calibrate, eval, batch and audit.

Each step the library reports (a :class:`tiergate.progress.Stage`) is one bar with done/total,
rate, ETA and the money spent so far, drawn by ``rich.progress``. Bars show when stderr is a
terminal; ``--progress`` shows them anyway (into a pipe or a log: the final state, once, with no
escape codes), ``--no-progress`` never. They never touch stdout, so ``--json`` output is the
same with or without them. ``rich.progress`` is imported only when bars are drawn.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from tiergate.progress import NO_PROGRESS, Stage, Tracker

LOG_WIDTH = 200  # the bars' width when stderr is not a terminal (``--progress`` into a log)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: only when stderr is a terminal)",
    )


def wanted(choice: bool | None, stream: TextIO) -> bool:
    """``--progress`` / ``--no-progress`` as given, else whether ``stream`` is a terminal."""
    return stream.isatty() if choice is None else choice


@contextmanager
def progress_for(args: argparse.Namespace) -> Iterator[Tracker]:
    """The tracker a command hands the library: bars on stderr, or none (see the module)."""
    if not wanted(getattr(args, "progress", None), sys.stderr):
        yield NO_PROGRESS
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:  # a pipe or a log: no terminal width to fit, so no squeezing
        console = Console(stderr=True, width=LOG_WIDTH)
    with bars(console) as tracker:
        yield tracker


@contextmanager
def bars(console: Console, *, clock: Callable[[], float] | None = None) -> Iterator[Bars]:
    """Bars drawn on ``console`` while the context is open (the final state stays); ``clock``
    (seconds) is rich's monotonic clock unless given."""
    tracker = Bars(console, clock)
    with tracker.progress:
        yield tracker


def duration(seconds: float) -> str:
    """``0:01:05`` (hours:minutes:seconds)."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class _Stage:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task
        self._cost_usd = 0.0

    def advance(self, count: int = 1, *, cost_usd: float = 0.0, note: str | None = None) -> None:
        self._cost_usd += cost_usd
        fields: dict[str, Any] = {"cost_usd": self._cost_usd}
        if note is not None:
            fields["note"] = note
        self._progress.update(self._task, advance=count, **fields)

    def finish(self) -> None:
        task = self._progress.tasks[self._progress.task_ids.index(self._task)]
        if task.total is None or task.completed < task.total:
            # Done early (a limit) or with no known total: the bar ends where the work did.
            self._progress.update(self._task, total=task.completed)


class Bars:
    """A tracker drawing one rich bar per stage; ``progress`` is the rich ``Progress``."""

    def __init__(self, console: Console, clock: Callable[[], float] | None) -> None:
        from rich.progress import BarColumn, Progress, TextColumn
        from rich.table import Column

        self.progress = Progress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=24),
            *_figure_columns(),
            console=console,
            redirect_stdout=False,  # stdout is the command's output, never the bars'
            speed_estimate_period=10.0,
            get_time=clock,
        )

    @contextmanager
    def stage(
        self, description: str, total: int | None, *, unit: str = "items", done: int = 0
    ) -> Iterator[Stage]:
        task = self.progress.add_task(
            description, total=total, completed=done, unit=unit, done_before=done, cost_usd=0.0
        )
        stage = _Stage(self.progress, task)
        yield stage
        stage.finish()


def _figure_columns() -> list[Any]:
    """Done/total, rate, ETA, cost and a note: columns rich aligns across the stages."""
    from rich.progress import ProgressColumn, Task
    from rich.table import Column
    from rich.text import Text

    class Counts(ProgressColumn):
        def render(self, task: Task) -> Text:
            total = "?" if task.total is None else f"{int(task.total):,}"
            return Text(f"{int(task.completed):,}/{total} {task.fields['unit']}", justify="right")

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            if task.finished:
                elapsed = task.finished_time or task.elapsed or 0.0
                done = task.completed - task.fields["done_before"]
                speed: float | None = done / elapsed if elapsed > 0 else None
            else:
                speed = task.speed
            unit = task.fields["unit"]
            return Text("-" if speed is None else f"{speed:,.1f} {unit}/s", justify="right")

    class Eta(ProgressColumn):
        def render(self, task: Task) -> Text:
            if task.finished:
                return Text(f"took {duration(task.finished_time or task.elapsed or 0.0)}")
            remaining = task.time_remaining
            return Text(f"ETA {'-:--:--' if remaining is None else duration(remaining)}")

    class Cost(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"${task.fields['cost_usd']:,.4f}", justify="right")

    class Note(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(str(task.fields.get("note", "")))

    return [column(table_column=Column(no_wrap=True)) for column in (Counts, Rate, Eta, Cost, Note)]
