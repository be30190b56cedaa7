"""Anthropic's error shape: ``{"type": "error", "error": {...}, "request_id": "req_..."}``."""

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

DEFAULT_MESSAGES: dict[int, str] = {
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
    529: "Overloaded",
}


class ApiError(Exception):
    """A failure the emulator answers with an error body; raised anywhere, rendered by the app."""

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

    def error_object(self) -> dict[str, str]:
        return {"type": self.error_type, "message": self.message}


def error_type_for(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def invalid(message: str) -> ApiError:
    """The common case: a 400 invalid_request_error."""
    return ApiError(400, message)


def error_body(error: ApiError, request_id: str) -> bytes:
    return orjson.dumps({"type": "error", "error": error.error_object(), "request_id": request_id})
