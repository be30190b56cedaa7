"""tiergate.heap: start-up objects frozen, serving-time cycles still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from tiergate import heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_freezes_start_up_and_still_collects_new_cycles(restored: None) -> None:
    before = Node()
    heap.settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
    assert all(found is not before for found in gc.get_objects())  # frozen: never scanned
    made = Node()
    made.other = Node()
    made.other.other = made  # a cycle made while serving
    alive = weakref.ref(made)
    del made
    assert gc.isenabled()
    # No explicit collect: allocating past the raised threshold must trigger one on its own.
    young_runs = gc.get_stats()[0]["collections"]
    churn = []
    for _ in range(3 * heap.YOUNG_THRESHOLD):
        churn.append(Node())
    del churn
    assert gc.get_stats()[0]["collections"] > young_runs
    assert alive() is None
