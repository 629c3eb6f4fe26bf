"""A Responses API `response` object (an `api: openai-responses` upstream's answer) → canonical `ChatResponse`.

Output `message` items give the text (`output_text` and `refusal` parts), `function_call` items the tool
calls, `reasoning` items are the model's own and are not passed on. `status: incomplete` is a `length`
(or `content_filter`) finish; a `failed` response is unreadable as an answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faregate.canonical import ChatResponse, FinishReason, ToolCall, Usage
from faregate.providers.wire import load_object, mask_secrets


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_usage(usage: object) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    inp = usage.get("input_tokens_details")
    out = usage.get("output_tokens_details")
    return Usage(
        _int(usage.get("input_tokens")),
        _int(usage.get("output_tokens")),
        _int(inp.get("cached_tokens")) if isinstance(inp, dict) else 0,
        reasoning_tokens=_int(out.get("reasoning_tokens")) if isinstance(out, dict) else 0,
    )


def finish_reason(status: object, incomplete: object, has_calls: bool) -> FinishReason:
    if status == "incomplete":
        reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if has_calls else "stop"


def message_text(item: Mapping[str, Any]) -> str:
    parts = item.get("content")
    if not isinstance(parts, list):
        return ""
    return "".join(
        str(p.get("text") if p.get("type") == "output_text" else p.get("refusal") or "")
        for p in parts
        if isinstance(p, dict) and p.get("type") in ("output_text", "refusal")
    )


def tool_call(item: Mapping[str, Any]) -> ToolCall:
    name = item.get("name")
    if not isinstance(name, str):
        raise ValueError("response: function_call without a name")
    arguments = item.get("arguments")
    return ToolCall(
        str(item.get("call_id") or item.get("id") or ""),
        name,
        arguments if isinstance(arguments, str) else "",
    )


def failure_message(data: Mapping[str, Any]) -> str:
    error = data.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return mask_secrets(str(message or "the upstream response failed"))


def parse_response_object(data: Mapping[str, Any]) -> ChatResponse:
    status = data.get("status")
    if status == "failed":
        raise ValueError(f"response failed: {failure_message(data)}")
    output = data.get("output")
    if not isinstance(output, list):
        raise ValueError("response: no output")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for item in output:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            texts.append(message_text(item))
        elif item.get("type") == "function_call":
            calls.append(tool_call(item))
    return ChatResponse(
        id=str(data.get("id") or ""),
        model=str(data.get("model") or ""),
        text="".join(texts),
        tool_calls=tuple(calls),
        finish_reason=finish_reason(status, data.get("incomplete_details"), bool(calls)),
        usage=parse_usage(data.get("usage")),
        created=_int(data.get("created_at")),
    )


def parse_chat_response(body: bytes) -> ChatResponse:
    return parse_response_object(load_object(body, "response"))
