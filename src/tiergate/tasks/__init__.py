"""Kinds of work, one module each (``base.py`` is the interface every task implements).

``TASKS`` names each kind's module; a task module is imported only when a route uses it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tiergate.tasks.base import Task

# kind -> "module:class"
TASKS: dict[str, str] = {
    "classify": "tiergate.tasks.classify:ClassifyTask",
    "extract": "tiergate.tasks.extract:ExtractTask",
    "tool": "tiergate.tasks.tool:ToolTask",
}


def task_class(kind: str) -> type[Task]:
    """The class of a task kind (``KeyError`` for an unknown kind)."""
    module, name = TASKS[kind].split(":")
    found: type[Task] = getattr(importlib.import_module(module), name)
    return found
