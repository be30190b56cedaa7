"""Where tiergate keeps what it builds once per machine: ``$TIERGATE_CACHE``, else ~/.cache."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "TIERGATE_CACHE"


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "tiergate"))
