"""Anthropic-shaped errors: ``{"type": "error", "error": {...}, "request_id": ...}``.

The SDK maps the status to its own exception class (400 BadRequestError, 401
AuthenticationError, 413 ContentTooLargeError, 429 RateLimitError, ...), so the status and the
error type must agree with the API's table.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence

import orjson

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "api_error",
    529: "overloaded_error",
}


class GatewayError(Exception):
    """Raised anywhere in a request; the app renders it as an error response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or error_type_for(status)
        self.headers = list(headers)


def error_type_for(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(error_type: str, message: str, request_id: str) -> bytes:
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }
    )


class RequestIds:
    """``req_tg_`` + a random per-process prefix + a counter: unique, and cheaper than
    drawing 96 random bits for every request."""

    def __init__(self) -> None:
        self._prefix = "req_tg_" + os.urandom(6).hex()
        self._count = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):012x}"
