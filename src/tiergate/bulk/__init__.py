"""Bulk routing: a whole JSONL file through a route, live or through the Message Batches API.

Resumable after a kill at any moment: the output is written in input order and is its own
checkpoint, and every Claude answer is journaled as it arrives, so a resumed run never asks an
upstream model again for an answer it already recorded.
"""

from tiergate.bulk.rows import Row, RowError, read_rows
from tiergate.bulk.run import BulkOptions, BulkResult, run_bulk

__all__ = ["BulkOptions", "BulkResult", "Row", "RowError", "read_rows", "run_bulk"]
