"""One Messages request, start to finish, without HTTP: limits, cache, answer, usage.

The HTTP app, the streaming writer and batches all build messages through :func:`create_message`,
so a batch result and a live answer to the same request are the same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiergate.emulator.answers import Answer, answer
from tiergate.emulator.caching import CacheOutcome
from tiergate.emulator.errors import ApiError
from tiergate.emulator.state import EmulatorState
from tiergate.emulator.validation import MessagesRequest
from tiergate.limits import ratelimit_headers, retry_after_value


@dataclass(frozen=True, slots=True)
class Completed:
    message: dict[str, Any]
    answer: Answer
    headers: list[tuple[str, str]]


def create_message(
    state: EmulatorState,
    request: MessagesRequest,
    *,
    service_tier: str = "standard",
    rate_limited: bool = True,
) -> Completed:
    """Admit (or refuse with 429), read/write the prompt cache, answer, and build the message."""
    now = state.clock()
    model = request.model.name
    cache = state.cache.plan(model, request.prompt, request.model.min_cacheable_tokens, now)
    reserved = 0
    if rate_limited:
        # Cache reads do not count toward ITPM on current models; writes do.
        counted_input = cache.uncached_tokens + cache.creation_tokens
        admission = state.limiter.admit(model, now, counted_input, request.max_tokens)
        if not admission.allowed:
            statuses = state.limiter.status(model, now)
            limit = next(status.limit for status in statuses if status.kind == admission.limited_by)
            raise ApiError(
                429,
                f"This request would exceed your rate limit of {limit} {admission.limited_by} "
                f"per minute for {model}. Wait for the time in the retry-after header.",
                headers=[
                    ("retry-after", retry_after_value(admission.retry_after_s)),
                    *ratelimit_headers(statuses),
                ],
            )
        reserved = admission.reserved_output
    state.cache.commit(cache, now)
    said = answer(request, state.answer_settings, state.ids)
    headers: list[tuple[str, str]] = []
    if rate_limited:
        state.limiter.settle(model, now, reserved, said.output_tokens)
        headers = ratelimit_headers(state.limiter.status(model, now))
    message = {
        "id": state.ids.make("msg"),
        "type": "message",
        "role": "assistant",
        "model": request.body["model"],
        "content": said.content,
        "stop_reason": said.stop_reason,
        "stop_sequence": said.stop_sequence,
        "usage": usage(cache, said.output_tokens, service_tier, said.thinking_tokens),
    }
    return Completed(message, said, headers)


def usage(
    cache: CacheOutcome, output_tokens: int, service_tier: str, thinking_tokens: int = 0
) -> dict[str, Any]:
    counts: dict[str, Any] = {
        "input_tokens": cache.uncached_tokens,
        "cache_creation_input_tokens": cache.creation_tokens,
        "cache_read_input_tokens": cache.read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache.written_5m,
            "ephemeral_1h_input_tokens": cache.written_1h,
        },
        "output_tokens": output_tokens,
        "service_tier": service_tier,
    }
    if thinking_tokens:
        counts["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
    return counts
