"""The emulator's errors, in Anthropic's shape (``tiergate.api_errors``)."""

from __future__ import annotations

from tiergate.api_errors import ERROR_TYPES, AnthropicError, error_type_for
from tiergate.api_errors import error_body as api_error_body

DEFAULT_MESSAGES: dict[int, str] = {
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
    529: "Overloaded",
}


class ApiError(AnthropicError):
    """A failure the emulator answers with an error body; raised anywhere, rendered by the app."""

    def error_object(self) -> dict[str, str]:
        return {"type": self.error_type, "message": self.message}


def invalid(message: str) -> ApiError:
    """The common case: a 400 invalid_request_error."""
    return ApiError(400, message)


def error_body(error: AnthropicError, request_id: str) -> bytes:
    return api_error_body(error.error_type, error.message, request_id)


__all__ = ["DEFAULT_MESSAGES", "ERROR_TYPES", "ApiError", "error_body", "error_type_for", "invalid"]
