"""Anthropic's `Message` object from an upstream: parse it into a `ChatResponse`. Also the stop-reason and
usage readers the stream decoder shares (rendering for `/v1/messages` clients is render.py's).

Usage differs by one convention: Anthropic's `input_tokens` excludes cached tokens, canonical (OpenAI's)
`prompt_tokens` includes them: prompt = input + cache_read + cache_creation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from faregate import jsonio
from faregate.canonical import ChatResponse, FinishReason, JSONObject, Thought, ToolCall, Usage
from faregate.providers.anthropic.thoughts import BLOCKS, parse_block

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


def finish_reason(stop_reason: object) -> FinishReason:
    return STOP_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


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


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_response(body: bytes) -> ChatResponse:
    """An upstream `Message`. Text blocks are concatenated, `tool_use` blocks become tool calls, thinking
    blocks thoughts; server-tool blocks are not part of the canonical answer. Raises `ValueError` when
    malformed."""
    data = jsonio.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise ValueError("anthropic response is not a message with a content list")
    text: list[str] = []
    calls: list[ToolCall] = []
    thoughts: list[Thought] = []
    for i, block in enumerate(data["content"]):
        if not isinstance(block, dict):
            raise ValueError(f"content[{i}] is not an object")
        kind = block.get("type")
        if kind == "text":
            text.append(require_str(block, "text", i))
        elif kind in BLOCKS:
            thoughts.append(parse_block(block))
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
        thoughts=tuple(thoughts),
    )


def matched_stop(data: Mapping[str, Any]) -> str | None:
    seq = data.get("stop_sequence")
    return seq if data.get("stop_reason") == "stop_sequence" and isinstance(seq, str) else None


def require_str(block: Mapping[str, Any], key: str, index: int) -> str:
    value = block.get(key)
    if not isinstance(value, str):
        raise ValueError(f"content[{index}].{key} is not a string")
    return value


def parse_arguments(arguments: str) -> JSONObject | None:
    """Tool-call arguments as Anthropic's `input` object; None when they are not a JSON object (e.g. an
    upstream cut short by max_tokens mid-call), which `input` cannot express. Empty arguments are `{}`."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
