"""OpenAI chat completion / embeddings response bodies → canonical `ChatResponse` / `EmbeddingResponse`.

Tolerant of what compatible servers do differently (null content, missing usage, DeepSeek's cache
fields); anything structurally wrong raises `ValueError` with a short message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from faregate.canonical import ChatResponse, Choice, EmbeddingResponse, FinishReason, ToolCall, Usage
from faregate.providers.openai.thoughts import parse_thoughts
from faregate.providers.wire import load_object

FINISH_REASONS: Final[Mapping[str, FinishReason]] = MappingProxyType(
    {
        "stop": "stop",
        "length": "length",
        "tool_calls": "tool_calls",
        "content_filter": "content_filter",
        "function_call": "tool_calls",  # the legacy functions API
    }
)


def parse_finish_reason(value: object) -> FinishReason:
    """Unknown or missing reasons (`eos` on some servers, null) read as a normal stop."""
    return FINISH_REASONS.get(value, "stop") if isinstance(value, str) else "stop"


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_usage(usage: object) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    # DeepSeek reports its cache hits at the top level instead.
    cached = cached or _int(usage.get("prompt_cache_hit_tokens"))
    return Usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), cached)


def text_of(content: object) -> str:
    """Message content: a string, null, or (on a few compatible servers) a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    raise ValueError("chat completion: 'content' is neither a string nor a list")


def arguments_text(arguments: object) -> str:
    """Arguments are JSON text; a few servers (older Ollama) send an object instead."""
    if isinstance(arguments, str):
        return arguments
    if arguments is None:
        return ""
    return json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)


def parse_tool_call(call: object) -> ToolCall:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise ValueError("chat completion: malformed tool call")
    fn = call["function"]
    name = fn.get("name")
    if not isinstance(name, str):
        raise ValueError("chat completion: tool call without a function name")
    return ToolCall(str(call.get("id") or ""), name, arguments_text(fn.get("arguments")))


def all_choices(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The choices in `index` order (one unless the request asked for `n`)."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise ValueError("chat completion: no choices")
    return sorted(choices, key=lambda c: _int(c.get("index")))


def parse_choice(choice: Mapping[str, Any]) -> Choice:
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ValueError("chat completion: choice without a message")
    text = text_of(message.get("content"))
    refusal = message.get("refusal")
    if not text and isinstance(refusal, str):
        text = refusal  # the model declined: its words are the answer
    calls = message.get("tool_calls")
    if calls is None:
        calls = []
    if not isinstance(calls, list):
        raise ValueError("chat completion: 'tool_calls' is not a list")
    logprobs = choice.get("logprobs")
    return Choice(
        text,
        tuple(parse_tool_call(c) for c in calls),
        parse_finish_reason(choice.get("finish_reason")),
        logprobs if isinstance(logprobs, dict) else None,
    )


def parse_chat_response(body: bytes) -> ChatResponse:
    data = load_object(body, "chat completion")
    choices = all_choices(data)
    first, *more = (parse_choice(c) for c in choices)
    return ChatResponse(
        id=str(data.get("id") or ""),
        model=str(data.get("model") or ""),
        text=first.text,
        tool_calls=first.tool_calls,
        finish_reason=first.finish_reason,
        usage=parse_usage(data.get("usage")),
        created=_int(data.get("created")),
        logprobs=first.logprobs,
        more_choices=tuple(more),
        thoughts=parse_thoughts(choices[0]["message"], signed=False),
    )


def _vector(item: object) -> tuple[int, tuple[float, ...]]:
    if not isinstance(item, dict):
        raise ValueError("embeddings: malformed data item")
    embedding = item.get("embedding")
    if not isinstance(embedding, list):
        # base64 (`encoding_format: base64`) is never requested, so never decoded
        raise ValueError("embeddings: expected a list of floats")
    try:
        vector = tuple(float(x) for x in embedding)
    except (TypeError, ValueError):
        raise ValueError("embeddings: expected a list of floats") from None
    return _int(item.get("index")), vector


def parse_embeddings_response(body: bytes) -> EmbeddingResponse:
    data = load_object(body, "embeddings")
    items = data.get("data")
    if not isinstance(items, list):
        raise ValueError("embeddings: no data")
    indexed = sorted((_vector(item) for item in items), key=lambda iv: iv[0])
    usage = parse_usage(data.get("usage")) or Usage()
    return EmbeddingResponse(str(data.get("model") or ""), tuple(v for _, v in indexed), usage)
