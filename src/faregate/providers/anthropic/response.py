"""Anthropic's `Message` object both ways: parse an upstream answer into a `ChatResponse`, render one for a
`/v1/messages` client. Also the stop-reason and usage tables the stream modules share.

Usage differs by one convention: Anthropic's `input_tokens` excludes cached tokens, canonical (OpenAI's)
`prompt_tokens` includes them: prompt = input + cache_read + cache_creation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from faregate import jsonio
from faregate.canonical import ChatResponse, FinishReason, JSONObject, ToolCall, Usage

STOP_REASONS: Final[Mapping[str, FinishReason]] = MappingProxyType(
    {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "pause_turn": "stop",  # a server tool paused the turn; the text so far is a complete answer
        "max_tokens": "length",
        "model_context_window_exceeded": "length",
        "tool_use": "tool_calls",
        "refusal": "content_filter",
    }
)

# The other way, for clients: `error` (a stream cut short) has no Anthropic reason and reads as end_turn.
FINISH_REASONS: Final[Mapping[FinishReason, str]] = MappingProxyType(
    {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
)

MESSAGE_ID_PREFIX: Final = "msg_"


def finish_reason(stop_reason: object) -> FinishReason:
    return STOP_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def stop_reason(finish: FinishReason) -> str:
    return FINISH_REASONS.get(finish, "end_turn")


def count(usage: Mapping[str, Any], key: str) -> int:
    """One token count; absent or null (Anthropic sends null cache fields) is 0."""
    value = usage.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"usage.{key} is not an integer")
    return value


def parse_usage(usage: Mapping[str, Any]) -> Usage:
    cache_read = count(usage, "cache_read_input_tokens")
    cache_write = count(usage, "cache_creation_input_tokens")
    return Usage(
        prompt_tokens=count(usage, "input_tokens") + cache_read + cache_write,
        completion_tokens=count(usage, "output_tokens"),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def render_usage(usage: Usage) -> JSONObject:
    """Canonical usage in Anthropic's terms (input_tokens without the cached part)."""
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    return {
        "input_tokens": max(0, usage.prompt_tokens - cached),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    }


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_response(body: bytes) -> ChatResponse:
    """An upstream `Message`. Text blocks are concatenated, `tool_use` blocks become tool calls, thinking
    and server-tool blocks are not part of the canonical answer. Raises `ValueError` when malformed."""
    data = jsonio.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise ValueError("anthropic response is not a message with a content list")
    text: list[str] = []
    calls: list[ToolCall] = []
    for i, block in enumerate(data["content"]):
        if not isinstance(block, dict):
            raise ValueError(f"content[{i}] is not an object")
        kind = block.get("type")
        if kind == "text":
            text.append(require_str(block, "text", i))
        elif kind == "tool_use":
            args = block.get("input")
            if not isinstance(args, dict):
                raise ValueError(f"content[{i}].input is not an object")
            calls.append(
                ToolCall(require_str(block, "id", i), require_str(block, "name", i), compact_json(args))
            )
    usage = data.get("usage")
    if not isinstance(usage, dict):
        raise ValueError("anthropic response has no usage object")
    rid, model = data.get("id"), data.get("model")
    if not isinstance(rid, str) or not isinstance(model, str):
        raise ValueError("anthropic response has no id or model")
    return ChatResponse(
        id=rid,
        model=model,
        text="".join(text),
        tool_calls=tuple(calls),
        finish_reason=finish_reason(data.get("stop_reason")),
        usage=parse_usage(usage),
        stop_sequence=matched_stop(data),
    )


def matched_stop(data: Mapping[str, Any]) -> str | None:
    seq = data.get("stop_sequence")
    return seq if data.get("stop_reason") == "stop_sequence" and isinstance(seq, str) else None


def require_str(block: Mapping[str, Any], key: str, index: int) -> str:
    value = block.get(key)
    if not isinstance(value, str):
        raise ValueError(f"content[{index}].{key} is not a string")
    return value


def message_id(rid: str) -> str:
    """Anthropic SDKs and tools expect `msg_` ids; other upstreams' ids (`chatcmpl-...`) are prefixed."""
    return rid if rid.startswith(MESSAGE_ID_PREFIX) else MESSAGE_ID_PREFIX + rid


def response_id(resp: ChatResponse, extras: Mapping[str, Any]) -> str:
    """`msg_<request id>`: unique per request, and `GET /v1/requests/{it}` finds the trace."""
    rid = extras.get("x-faregate", {}).get("request_id")
    return message_id(rid if isinstance(rid, str) and rid else resp.id)


def parse_arguments(arguments: str) -> JSONObject | None:
    """Tool-call arguments as Anthropic's `input` object; None when they are not a JSON object (e.g. an
    upstream cut short by max_tokens mid-call), which `input` cannot express. Empty arguments are `{}`."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def render_response(resp: ChatResponse, model: str, usage: Usage, extras: Mapping[str, Any]) -> JSONObject:
    """A `Message` for a `/v1/messages` client, with faregate's `x-faregate` object and `usage.cost`."""
    content: list[JSONObject] = []
    if resp.text or not resp.tool_calls:
        content.append({"type": "text", "text": resp.text})
    content.extend(
        {"type": "tool_use", "id": c.id, "name": c.name, "input": parse_arguments(c.arguments) or {}}
        for c in resp.tool_calls
    )
    wire_usage = render_usage(usage)
    if "cost" in extras:
        wire_usage["cost"] = extras["cost"]
    out: JSONObject = {
        "id": response_id(resp, extras),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "stop_sequence" if resp.stop_sequence is not None else stop_reason(resp.finish_reason),
        "stop_sequence": resp.stop_sequence,
        "usage": wire_usage,
    }
    if "x-faregate" in extras:
        out["x-faregate"] = extras["x-faregate"]
    return out
