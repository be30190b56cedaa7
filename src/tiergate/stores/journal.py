"""The ledger's intent journal: nothing billed goes unrecorded, even after ``kill -9``.

Before a request goes upstream its *intent* (key, day, the reservation) is appended to a
journal file; when its ledger row is ready (before the answer is sent), the row is appended
too. The file is mapped into memory shared (``mmap``, ``MAP_SHARED``): a record is a memory
copy into the kernel's page cache of that file, no system call, and it is the kernel's from that
instant, so a process killed at any moment, even by SIGKILL, leaves it behind (a host crash is
another matter: the SQL ledger's own durability covers rows already flushed). The in-memory
batch that goes to the SQL ledger every ``flush_s`` is then only a copy.

At start-up the gateway replays every journal whose owner is gone: rows not yet in the ledger
are inserted (by ``request_id``, so a row is never counted twice), and an intent without a row,
a request that may have been billed but never settled, becomes an ``unsettled`` row charged its
whole reservation, so budgets after a restart never undercount.

Each segment is locked with ``flock`` by the process writing it; the kernel drops the lock when
that process dies, however it dies. Replicas may share one journal folder: a start-up replays
only unlocked segments, never a live neighbour's. Segments rotate once past ``rotate_bytes``:
open intents are copied into the new one, and the old one is deleted once its rows are in the
ledger. A segment is a fixed-size file (zeros past the last record).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson

log = logging.getLogger("tiergate.stores.journal")

INTENT, ROW, VOID = b"I", b"R", b"V"
SEGMENT_BYTES = 4 * 1024 * 1024
UNSETTLED = "unsettled"


class Intent(NamedTuple):
    """A tuple: built on every request, and a frozen dataclass costs ten times as much."""

    request_id: str
    at: float
    day: str
    key_id: str
    route: str
    model: str
    reserved_usd: float

    def line(self) -> bytes:
        return INTENT + orjson.dumps(tuple(self)) + b"\n"


@dataclass
class Recovered:
    """What dead journals left: row values (as the ledger's column order) and their files."""

    rows: list[list[Any]]
    unsettled: list[Intent]
    paths: list[Path]


class Journal:
    def __init__(self, folder: Path, run_id: str, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        self.folder = folder
        self._run_id = run_id
        self._segment_bytes = segment_bytes
        self._number = 0
        self._open: dict[str, bytes] = {}
        self.closed: list[Path] = []
        self._descriptor, self.path, self._map = self._new_segment()
        self._size = 0

    def _new_segment(self) -> tuple[int, Path, mmap.mmap]:
        self._number += 1
        path = self.folder / f"{self._run_id}.{self._number:06d}.journal"
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(descriptor, self._segment_bytes)
        return descriptor, path, mmap.mmap(descriptor, self._segment_bytes)

    def _append(self, line: bytes) -> None:
        end = self._size + len(line)
        if end > self._segment_bytes:
            self._rotate()
            end = self._size + len(line)
            if end > self._segment_bytes:
                raise ValueError(f"a journal record of {len(line)} bytes exceeds a segment")
        self._map[self._size : end] = line
        self._size = end

    def intend(self, intent: Intent) -> None:
        line = intent.line()
        self._open[intent.request_id] = line
        self._append(line)

    def row(self, request_id: str, values: Iterable[Any], *, closes: str | None = None) -> None:
        """The settled row (in the ledger's column order); it closes the request's intent,
        or the intent named ``closes`` (a row keyed by something the intent did not know yet,
        such as a batch's id), in the same copy."""
        self._open.pop(request_id, None)
        line = ROW + orjson.dumps(tuple(values)) + b"\n"
        if closes is not None and self._open.pop(closes, None) is not None:
            line += VOID + orjson.dumps(closes) + b"\n"
        self._append(line)

    def void(self, request_id: str) -> None:
        """The request ended without an upstream call (refused): nothing to charge."""
        if self._open.pop(request_id, None) is not None:
            self._append(VOID + orjson.dumps(request_id) + b"\n")

    def rotate_if_large(self) -> None:
        """Past half a segment, rotate now (between batches) rather than on a request."""
        if self._size > self._segment_bytes // 2:
            self._rotate()

    def _rotate(self) -> None:
        """Start a new segment holding the open intents; the old one waits for its rows."""
        old = (self._descriptor, self.path, self._map)
        self._descriptor, self.path, self._map = self._new_segment()
        carried = b"".join(self._open.values())
        self._map[: len(carried)] = carried
        self._size = len(carried)
        old[2].close()
        os.close(old[0])  # the file stays: it is deleted once its rows are in
        self.closed.append(old[1])

    def forget(self, paths: Iterable[Path]) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(ValueError):
                self.closed.remove(path)

    def close(self, *, everything_written: bool) -> None:
        """Stop; with every row in the ledger and no intent open, nothing is left behind."""
        self._map.close()
        os.close(self._descriptor)
        if everything_written and not self._open:
            self.forget([*self.closed, self.path])


def recover(folder: Path) -> Recovered:
    """Read every segment in ``folder`` whose writer is gone (its lock is free)."""
    found = Recovered([], [], [])
    if not folder.exists():
        return found
    intents: dict[str, Intent] = {}
    settled: set[str] = set()
    for path in sorted(folder.glob("*.journal")):
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live gateway is writing it
            with os.fdopen(os.dup(descriptor), "rb") as handle:
                content = handle.read()
        finally:
            os.close(descriptor)
        found.paths.append(path)
        for line in content.rstrip(b"\x00").split(b"\n"):
            _read_line(line, intents, settled, found)
    found.unsettled = [intent for rid, intent in intents.items() if rid not in settled]
    return found


def _read_line(
    line: bytes, intents: dict[str, Intent], settled: set[str], found: Recovered
) -> None:
    if not line:
        return
    try:
        value = orjson.loads(line[1:])
    except orjson.JSONDecodeError:
        log.warning("skipping a torn journal line")
        return
    kind = line[:1]
    if kind == INTENT:
        intents[value[0]] = Intent(*value)
    elif kind == ROW:
        settled.add(value[0])
        found.rows.append(value)
    elif kind == VOID:
        settled.add(value)
