"""Anthropic-shaped errors: ``{"type": "error", "error": {...}, "request_id": ...}``.

The SDK maps the status to its own exception class (400 BadRequestError, 401
AuthenticationError, 413 ContentTooLargeError, 429 RateLimitError, ...), so the status and the
error type must agree with the API's table.
"""

from __future__ import annotations

import itertools
import os

from tiergate.api_errors import ERROR_TYPES, AnthropicError, error_body, error_type_for


class GatewayError(AnthropicError):
    """Raised anywhere in a request; the app renders it as an error response."""


class RequestIds:
    """``req_tg_`` + a random per-process prefix + a counter: unique, and cheaper than
    drawing 96 random bits for every request."""

    def __init__(self) -> None:
        self.run_id = os.urandom(6).hex()  # also names this run's journal files
        self._prefix = "req_tg_" + self.run_id
        self._count = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):012x}"


__all__ = ["ERROR_TYPES", "GatewayError", "RequestIds", "error_body", "error_type_for"]
