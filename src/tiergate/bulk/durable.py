"""Append-only JSONL files that survive ``kill -9`` at any moment.

Every record is one ``os.write`` of a whole line on an ``O_APPEND`` descriptor: once the call
returns, the line is in the kernel's page cache and outlives the process. ``sync()`` (fsync) is
called by the owner at checkpoints, so a power loss costs at most the lines since the last one.
A torn last line (power loss mid-write) is cut off when the file is opened again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

TAIL_CHUNK = 64 * 1024


def complete_size(path: Path) -> int:
    """Bytes up to and including the last newline: the part of the file that is whole."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        position = size
        while position > 0:
            start = max(0, position - TAIL_CHUNK)
            handle.seek(start)
            block = handle.read(position - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            position = start
    return 0


def last_record(path: Path) -> dict[str, Any] | None:
    """The last whole line of a JSONL file, parsed; None for a missing or empty file."""
    if not path.exists():
        return None
    end = complete_size(path)
    if end == 0:
        return None
    with path.open("rb") as handle:
        start = max(0, end - TAIL_CHUNK)
        handle.seek(start)
        block = handle.read(end - start)
    line = block[:-1].rsplit(b"\n", 1)[-1]
    record = orjson.loads(line)
    return record if isinstance(record, dict) else None


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Whole lines of a JSONL file, parsed; a torn last line is ignored."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                return
            record = orjson.loads(raw)
            if isinstance(record, dict):
                yield record


class AppendFile:
    """One JSONL file opened for appending whole lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        whole = complete_size(path)
        if os.fstat(self._fd).st_size != whole:
            os.ftruncate(self._fd, whole)
        self._dirty = False

    def append(self, record: dict[str, Any]) -> None:
        pending = memoryview(orjson.dumps(record) + b"\n")
        while pending:  # a regular file may take a large write in parts
            pending = pending[os.write(self._fd, pending) :]
        self._dirty = True

    def sync(self) -> None:
        if self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1
