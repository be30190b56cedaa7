"""Exact cosine nearest neighbours over unit vectors (a matrix product; fine to ~10^5 rows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Queries are scored in blocks so the similarity matrix never exceeds ~block x index rows.
QUERY_BLOCK = 1024


@dataclass(frozen=True, slots=True)
class NeighbourResult:
    indices: NDArray[np.intp]  # (queries, k), most similar first
    similarities: NDArray[np.float32]  # (queries, k)


def nearest(
    index: NDArray[np.float32],
    queries: NDArray[np.float32],
    k: int,
    *,
    columns: NDArray[np.float32] | None = None,
) -> NeighbourResult:
    """The ``k`` rows of ``index`` most similar to each query row, most similar first.

    ``columns``: ``index.T`` as a C-contiguous array, for callers that score many small
    batches against one index. BLAS reads it in order; with ``index.T`` a one-text query over
    8,005 BANKING77 vectors took 4.8 ms here, with ``columns`` 1.2 ms (one BLAS thread).
    """
    transposed = index.T if columns is None else columns
    count = min(k, index.shape[0])
    all_indices = np.empty((queries.shape[0], count), dtype=np.intp)
    all_similarities = np.empty((queries.shape[0], count), dtype=np.float32)
    for start in range(0, queries.shape[0], QUERY_BLOCK):
        block = queries[start : start + QUERY_BLOCK] @ transposed
        if count < index.shape[0]:
            top = np.argpartition(-block, count - 1, axis=1)[:, :count]
        else:
            top = np.broadcast_to(np.arange(count), (block.shape[0], count)).copy()
        top_similarities = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-top_similarities, axis=1, kind="stable")
        all_indices[start : start + block.shape[0]] = np.take_along_axis(top, order, axis=1)
        all_similarities[start : start + block.shape[0]] = np.take_along_axis(
            top_similarities, order, axis=1
        )
    return NeighbourResult(indices=all_indices, similarities=all_similarities)
