"""Run the `tiergate` command line as a user would: a fresh process, offline, no API key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def tiergate(
    *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`python -m tiergate ARGS` without ANTHROPIC_* or TIERGATE_* variables (so Claude tiers
    are emulated and the built-in price book is used), model weights never fetched."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "TIERGATE_"))}
    env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "tiergate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        check=False,
    )
