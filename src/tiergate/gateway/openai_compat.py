"""``POST /v1/chat/completions``: the OpenAI Chat Completions API, translated to Messages.

Many applications call Claude through the OpenAI SDK. The request is translated to a Messages
body and answered by the same pipeline as ``/v1/messages`` (routes usable as model names,
budgets, limits, retries, fallback, metering, the ledger), and the answer is translated back: a
``chat.completion``, or ``chat.completion.chunk`` events ending with ``data: [DONE]``.

Translated: ``system`` / ``developer`` turns to ``system``; text and ``image_url`` parts (data
URLs and http URLs); assistant ``tool_calls`` to ``tool_use`` blocks and ``tool`` turns to
``tool_result`` blocks (consecutive turns of one role merged, as Messages wants); ``tools``
(functions) to tools with ``input_schema``; ``tool_choice``; ``max_completion_tokens`` /
``max_tokens`` (default :data:`DEFAULT_MAX_TOKENS`); ``stop``; ``temperature`` (at most 1, the
Messages range), ``top_p``; ``user``; ``stream`` and ``stream_options.include_usage``. Refused
with a 400: ``n`` above 1. Errors keep the Anthropic shape, whose ``error.message`` and
``error.type`` the OpenAI SDK reads as its own.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from tiergate import sse
from tiergate.gateway.asgi import JSON, Message, Receive, Scope, Send, read_body
from tiergate.gateway.errors import GatewayError
from tiergate.gateway.messages import answer_messages, parse_json_object
from tiergate.gateway.services import Request, Services

DEFAULT_MAX_TOKENS = 4096
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}
KEPT_HEADERS = (b"request-id", b"retry-after", b"x-should-retry")


async def handle_chat_completions(
    services: Services, request: Request, scope: Scope, receive: Receive, send: Send
) -> None:
    body = parse_json_object(await read_body(scope, receive, services.config.max_body_bytes))
    messages_body = to_messages(body)
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    try:
        raw = orjson.dumps(messages_body)
    except orjson.JSONEncodeError:
        raise GatewayError(400, "the request body is nested too deeply") from None
    translate = ToOpenAI(send, include_usage)
    await answer_messages(services, request, scope, raw, messages_body, receive, translate)


# ---------------------------------------------------------------------- request: OpenAI -> Messages


def to_messages(body: dict[str, Any]) -> dict[str, Any]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "model: Field required (a Claude model id or a tiergate route)")
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        raise GatewayError(400, "messages: Field required (a non-empty list)")
    if body.get("n") not in (None, 1):
        raise GatewayError(400, "n: only 1 is supported (Claude answers once per request)")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", DEFAULT_MAX_TOKENS))
    if type(max_tokens) is not int or max_tokens < 1:
        raise GatewayError(400, "max_completion_tokens: expected a positive integer")
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise GatewayError(400, f"messages.{index}: expected an object")
        role = turn.get("role")
        if role in ("system", "developer"):
            system.append(_text_of(turn.get("content"), f"messages.{index}.content"))
            continue
        if role == "user":
            blocks = _user_blocks(turn.get("content"), f"messages.{index}.content")
            _append(messages, "user", blocks)
        elif role == "assistant":
            _append(messages, "assistant", _assistant_blocks(turn, index))
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": str(turn.get("tool_call_id") or ""),
                "content": _text_of(turn.get("content"), f"messages.{index}.content"),
            }
            _append(messages, "user", [result])
        else:
            raise GatewayError(
                400, f"messages.{index}.role: expected system, developer, user, assistant or tool"
            )
    if not messages:
        raise GatewayError(400, "messages: at least one user or assistant message is required")
    out: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if system:
        out["system"] = "\n\n".join(system)
    if body.get("stream") is True:
        out["stream"] = True
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        out["stop_sequences"] = stop
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    top_p = body.get("top_p")
    if isinstance(top_p, int | float) and not isinstance(top_p, bool) and top_p < 1:
        out["top_p"] = float(top_p)
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    tools = body.get("tools")
    if tools is not None:
        out["tools"] = _tools(tools)
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            out["tool_choice"] = choice
    return out


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    """Messages wants turns to alternate: a turn of the same role as the last joins it."""
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _text_of(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        if all(isinstance(text, str) for text in texts):
            return "".join(texts)  # type: ignore[arg-type]
    raise GatewayError(400, f"{where}: expected a string or a list of text parts")


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise GatewayError(400, f"{where}: expected a string or a list of parts")
    blocks = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url" and isinstance(part.get("image_url"), dict):
            blocks.append(_image(part["image_url"].get("url"), f"{where}.{index}"))
        else:
            raise GatewayError(400, f"{where}.{index}: expected a text or image_url part")
    return blocks


def _image(url: Any, where: str) -> dict[str, Any]:
    if not isinstance(url, str):
        raise GatewayError(400, f"{where}.image_url.url: expected a string")
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media_type = head[5:].split(";")[0]
        if not head.endswith(";base64") or not data:
            raise GatewayError(400, f"{where}: a data URL must be base64 (data:TYPE;base64,...)")
        source = {"type": "base64", "media_type": media_type, "data": data}
    else:
        source = {"type": "url", "url": url}
    return {"type": "image", "source": source}


def _assistant_blocks(turn: dict[str, Any], index: int) -> list[dict[str, Any]]:
    text = _text_of(turn.get("content"), f"messages.{index}.content")
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    calls = turn.get("tool_calls") or []
    if not isinstance(calls, list):
        raise GatewayError(400, f"messages.{index}.tool_calls: expected a list")
    for number, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise GatewayError(400, f"messages.{index}.tool_calls.{number}: expected a function")
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except (orjson.JSONDecodeError, TypeError):
            raise GatewayError(
                400, f"messages.{index}.tool_calls.{number}.function.arguments: not JSON"
            ) from None
        blocks.append(
            {
                "type": "tool_use",
                "id": str(call.get("id") or f"toolu_{index}_{number}"),
                "name": function["name"],
                "input": arguments if isinstance(arguments, dict) else {"value": arguments},
            }
        )
    return blocks


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise GatewayError(400, "tools: expected a list of functions")
    out = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise GatewayError(400, f"tools.{index}: expected {{type: function, function: ...}}")
        definition: dict[str, Any] = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if isinstance(function.get("description"), str):
            definition["description"] = function["description"]
        out.append(definition)
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return {"type": "auto"} if choice else None
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"type": "tool", "name": function["name"]}
    raise GatewayError(400, "tool_choice: expected auto, none, required or a function")


# ---------------------------------------------------------------------- answer: Messages -> OpenAI


def completion(message: dict[str, Any], created: int) -> dict[str, Any]:
    text = "".join(b.get("text", "") for b in message.get("content", []) if b["type"] == "text")
    calls = [
        {
            "id": block["id"],
            "type": "function",
            "function": {"name": block["name"], "arguments": orjson.dumps(block["input"]).decode()},
        }
        for block in message.get("content", [])
        if block.get("type") == "tool_use"
    ]
    answer: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        answer["tool_calls"] = calls
    return {
        "id": "chatcmpl-" + str(message.get("id", "")),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": answer,
                "finish_reason": FINISH_REASONS.get(message.get("stop_reason") or "", "stop"),
                "logprobs": None,
            }
        ],
        "usage": usage_of(message.get("usage") or {}),
    }


def usage_of(usage: dict[str, Any]) -> dict[str, int]:
    prompt = sum(
        int(usage.get(name) or 0)
        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    output = int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}


class ToOpenAI:
    """An ASGI ``send`` that turns the Messages pipeline's answer into an OpenAI one. Errors
    pass unchanged (their shape is one the OpenAI SDK reads); a 200 is translated."""

    def __init__(self, send: Send, include_usage: bool) -> None:
        self._send = send
        self._include_usage = include_usage
        self._created = int(time.time())
        self._status = 200
        self._headers: list[tuple[bytes, bytes]] = []
        self._streaming = False
        self._buffer: list[bytes] = []
        self._events = sse.EventReader()
        self._id = ""
        self._model = ""
        self._usage: dict[str, Any] = {}
        self._tool_index = -1
        self._block_tool: dict[int, int] = {}
        self._finish: str | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._status = message["status"]
            headers = message.get("headers") or []
            self._streaming = self._status == 200 and any(
                name == b"content-type" and value.startswith(b"text/event-stream")
                for name, value in headers
            )
            self._headers = [
                (name, value)
                for name, value in headers
                if name in KEPT_HEADERS or name.startswith(b"x-tiergate-")
            ]
            if self._streaming:
                await self._send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"text/event-stream; charset=utf-8"),
                            (b"cache-control", b"no-cache"),
                            *self._headers,
                        ],
                    }
                )
            return
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        if self._streaming:
            out = b"".join(self._chunk(name, data) for name, data in self._events.feed(chunk))
            if not more:
                out += sse.DONE
            if out or not more:
                await self._send({"type": "http.response.body", "body": out, "more_body": more})
            return
        self._buffer.append(chunk)
        if not more:
            await self._finish_whole(b"".join(self._buffer))

    async def _finish_whole(self, body: bytes) -> None:
        if self._status == 200:
            body = orjson.dumps(completion(orjson.loads(body), self._created))
        headers = [
            (b"content-type", JSON),
            (b"content-length", str(len(body)).encode()),
            *self._headers,
        ]
        await self._send(
            {"type": "http.response.start", "status": self._status, "headers": headers}
        )
        await self._send({"type": "http.response.body", "body": body})

    def _chunk(self, name: str, data: Any) -> bytes:
        if not isinstance(data, dict):
            return b""
        kind = data.get("type", name)
        if kind == "message_start":
            started = data.get("message") or {}
            self._id, self._model = (
                "chatcmpl-" + str(started.get("id", "")),
                started.get("model", ""),
            )
            self._usage.update(started.get("usage") or {})
            return self._delta({"role": "assistant", "content": ""})
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                self._tool_index += 1
                self._block_tool[data.get("index", 0)] = self._tool_index
                call = {
                    "index": self._tool_index,
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""},
                }
                return self._delta({"tool_calls": [call]})
            return b""
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return self._delta({"content": delta.get("text", "")})
            if delta.get("type") == "input_json_delta":
                index = self._block_tool.get(data.get("index", 0), 0)
                arguments = {
                    "index": index,
                    "function": {"arguments": delta.get("partial_json", "")},
                }
                return self._delta({"tool_calls": [arguments]})
            return b""
        if kind == "message_delta":
            self._usage.update(data.get("usage") or {})
            reason = (data.get("delta") or {}).get("stop_reason") or ""
            self._finish = FINISH_REASONS.get(reason, "stop")
            return self._delta({}, finish_reason=self._finish)
        if kind == "message_stop" and self._include_usage:
            return sse.data_only({**self._frame([]), "usage": usage_of(self._usage)})
        if kind == "error":
            return sse.data_only({"error": data.get("error") or {}})
        return b""

    def _delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return sse.data_only(self._frame([choice]))

    def _frame(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
