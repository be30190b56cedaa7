"""Where a bulk run keeps its files, and how far an earlier run of the same command got.

The output and errors files are written in input order, so the last line of either is the
resume point: every input line up to it is done. ``OUT.state/`` holds the answer journal and a
manifest naming the input, route, calibration and mode; a resumed run must match it, because
answers recorded under other thresholds or for another file would silently mix in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiergate.bulk.durable import last_record

MANIFEST_FORMAT = 1
FINGERPRINT_BYTES = 1 << 20


class StateMismatchError(ValueError):
    """The output belongs to another run (other input, route, calibration or mode)."""


@dataclass(frozen=True)
class RunFiles:
    output: Path
    errors: Path

    @property
    def state_dir(self) -> Path:
        return self.output.with_name(self.output.name + ".state")

    @property
    def journal(self) -> Path:
        return self.state_dir / "journal.jsonl"

    @property
    def manifest(self) -> Path:
        return self.state_dir / "manifest.json"

    def resume_line(self) -> int:
        """The last input line written to the output or errors file (0: a fresh start)."""
        lines = [
            int(record.get("line", 0))
            for record in (last_record(self.output), last_record(self.errors))
            if record is not None
        ]
        return max(lines, default=0)


def file_digest(path: Path, limit: int | None = None) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        digest.update(handle.read(limit) if limit is not None else handle.read())
    return digest.hexdigest()


def manifest_for(source: Path, calibration: Path, route_name: str, mode: str) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "input": str(source.resolve()),
        "input_size": source.stat().st_size,
        "input_head": file_digest(source, FINGERPRINT_BYTES),
        "route": route_name,
        "calibration": file_digest(calibration),
        "mode": mode,
    }


def claim(files: RunFiles, manifest: dict[str, Any]) -> int:
    """Start or resume a run; returns the resume line. Refuses another run's output."""
    if files.manifest.exists():
        earlier = json.loads(files.manifest.read_text())
        changed = sorted(key for key in manifest if earlier.get(key) != manifest[key])
        if changed:
            raise StateMismatchError(
                f"{files.output} holds a run with another {', '.join(changed)}: remove it and "
                f"{files.state_dir}, or choose another --out"
            )
        return files.resume_line()
    if files.output.exists() and files.output.stat().st_size > 0:
        raise StateMismatchError(
            f"{files.output} exists and was not written by `tiergate batch`: choose another --out"
        )
    files.state_dir.mkdir(parents=True, exist_ok=True)
    # A fresh run: stale errors from an unrelated earlier run would shift the resume point. They
    # go before the manifest appears, so a kill in between can never leave both.
    for path in (files.output, files.errors, files.journal):
        path.unlink(missing_ok=True)
    temporary = files.manifest.with_suffix(".tmp")
    temporary.write_text(json.dumps(manifest, indent=1))
    temporary.replace(files.manifest)
    return 0
