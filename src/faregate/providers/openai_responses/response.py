"""A Responses API `response` object (an `api: openai-responses` upstream's answer) → canonical `ChatResponse`.

Output `message` items give the text (`output_text` and `refusal` parts) and its annotations, `function_call`
items the tool calls, `reasoning` items the thoughts (summary text; `encrypted_content` as the signature,
origin `openai-responses`), and any other item (a built-in tool's `web_search_call`, ...) is kept as sent
for a Responses client. `status: incomplete` is a `length` (or `content_filter`) finish; a `failed`
response is unreadable as an answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from faregate.canonical import ChatResponse, FinishReason, Thought, ToolCall, Usage
from faregate.providers.openai_responses.reasoning import ORIGIN, summary_texts
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
    return "".join(text for text, _ in message_parts(item))


def message_parts(item: Mapping[str, Any]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """(text, annotations) of each `output_text` or `refusal` part."""
    parts = item.get("content")
    if not isinstance(parts, list):
        return []
    out: list[tuple[str, list[Mapping[str, Any]]]] = []
    for p in parts:
        if not isinstance(p, dict) or p.get("type") not in ("output_text", "refusal"):
            continue
        text = str(p.get("text") if p.get("type") == "output_text" else p.get("refusal") or "")
        annotations = p.get("annotations")
        out.append(
            (text, [a for a in annotations if isinstance(a, dict)] if isinstance(annotations, list) else [])
        )
    return out


POSITIONS: Final = ("start_index", "end_index", "index")  # an annotation's places in its part's text


def shifted(annotation: Mapping[str, Any], offset: int) -> Mapping[str, Any]:
    """An annotation of a part that starts `offset` characters into the answer text."""
    if not offset:
        return annotation
    return {k: v + offset if k in POSITIONS and isinstance(v, int) else v for k, v in annotation.items()}


def thought_of(item: Mapping[str, Any]) -> Thought:
    encrypted = item.get("encrypted_content")
    return Thought(
        summary_texts(item),
        encrypted if isinstance(encrypted, str) and encrypted else None,
        ORIGIN,
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
    thoughts: list[Thought] = []
    provider_items: list[Mapping[str, Any]] = []
    annotations: list[Mapping[str, Any]] = []
    length = 0
    for item in output:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            for text, notes in message_parts(item):
                annotations.extend(shifted(a, length) for a in notes)
                texts.append(text)
                length += len(text)
        elif kind == "function_call":
            calls.append(tool_call(item))
        elif kind == "reasoning":
            thoughts.append(thought_of(item))
        elif isinstance(kind, str):
            provider_items.append(item)
    return ChatResponse(
        id=str(data.get("id") or ""),
        model=str(data.get("model") or ""),
        text="".join(texts),
        tool_calls=tuple(calls),
        finish_reason=finish_reason(status, data.get("incomplete_details"), bool(calls)),
        usage=parse_usage(data.get("usage")),
        created=_int(data.get("created_at")),
        thoughts=tuple(thoughts),
        provider_items=tuple(provider_items),
        annotations=tuple(annotations),
    )


def parse_chat_response(body: bytes) -> ChatResponse:
    return parse_response_object(load_object(body, "response"))
