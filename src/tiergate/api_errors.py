"""Anthropic's error shape, shared by the emulator and the gateway.

``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": "req_..."}``. The SDK
maps the status to its own exception class (400 BadRequestError, 401 AuthenticationError, 413
ContentTooLargeError, 429 RateLimitError, 529 OverloadedError, ...), so status and error type
must agree with the API's table.
"""

from __future__ import annotations

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


def error_type_for(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


class AnthropicError(Exception):
    """A failure answered with an Anthropic error body; raised anywhere, rendered by the app."""

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


def error_body(error_type: str, message: str, request_id: str) -> bytes:
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }
    )
