"""Gemini's `GenerateContentResponse` and `BatchEmbedContentsResponse` → canonical responses.

The helpers here read one response or one stream chunk (same shape); `stream.py` reuses them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from faregate.canonical import (
    ChatResponse,
    EmbeddingResponse,
    FinishReason,
    JSONObject,
    ToolCall,
    Usage,
)
from faregate.providers.gemini.thoughts import read_thoughts
from faregate.providers.wire import load_object

# Candidate.finishReason -> canonical. Unlisted (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, ...) -> stop.
FINISH_REASONS: Final[Mapping[str, FinishReason]] = MappingProxyType(
    {
        "STOP": "stop",
        "MAX_TOKENS": "length",
        "SAFETY": "content_filter",
        "RECITATION": "content_filter",
        "BLOCKLIST": "content_filter",
        "PROHIBITED_CONTENT": "content_filter",
        "SPII": "content_filter",
        "IMAGE_SAFETY": "content_filter",
        "IMAGE_PROHIBITED_CONTENT": "content_filter",
    }
)


def parse_chat_response(body: bytes | str, thoughts: bool = False) -> ChatResponse:
    """A non-streaming response (with `thoughts`, its thought parts and signatures too). Raises ValueError
    when it is not a GenerateContentResponse."""
    data = load_object(body, "Gemini response")
    usage = parse_usage(data.get("usageMetadata"), thoughts)
    rid, model = response_id(data), model_version(data)
    if not data.get("candidates"):
        if is_blocked(data):  # the prompt itself was blocked: no candidate at all
            return ChatResponse(rid, model, "", finish_reason="content_filter", usage=usage)
        raise ValueError("Gemini response has no candidates")
    parts, raw_reason = first_candidate(data)
    texts: list[str] = []
    calls: list[ToolCall] = []
    for part in parts:
        texts.append(part_text(part))
        call = part_tool_call(part, len(calls))
        if call is not None:
            calls.append(call)
    reason = finish_reason(raw_reason, has_calls=bool(calls))
    return ChatResponse(
        rid,
        model,
        "".join(texts),
        tuple(calls),
        reason,
        usage,
        thoughts=read_thoughts(parts) if thoughts else (),
    )


def parse_embeddings_response(body: bytes | str) -> EmbeddingResponse:
    """Gemini reports no usage for embeddings: zero, marked estimated (the caller counts the prompt)."""
    data = load_object(body, "Gemini embeddings")
    vectors = tuple(_vector(item) for item in _list(data.get("embeddings"), "embeddings"))
    return EmbeddingResponse(model="", vectors=vectors, usage=Usage(0, 0, estimated=True))


def response_id(data: JSONObject) -> str:
    rid = data.get("responseId")
    return rid if isinstance(rid, str) and rid else f"gen-{uuid.uuid4().hex}"


def model_version(data: JSONObject) -> str:
    model = data.get("modelVersion")
    return model if isinstance(model, str) else ""


def is_blocked(data: JSONObject) -> bool:
    feedback = data.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def first_candidate(data: JSONObject) -> tuple[list[JSONObject], str | None]:
    """The parts and raw finishReason of the first candidate ([] and None when there is none)."""
    candidates = _list(data.get("candidates") or [], "candidates")
    if not candidates:
        return [], None
    candidate = _object(candidates[0], "candidate")
    content = _object(candidate.get("content") or {}, "content")  # absent when blocked by SAFETY
    parts = [_object(p, "part") for p in _list(content.get("parts") or [], "parts")]
    reason = candidate.get("finishReason")
    return parts, reason if isinstance(reason, str) else None


def part_text(part: JSONObject) -> str:
    """The visible text of a part: "" for thought summaries (`thought: true`) and non-text parts."""
    text = part.get("text")
    if not isinstance(text, str) or part.get("thought") is True:
        return ""
    return text


def part_tool_call(part: JSONObject, index: int) -> ToolCall | None:
    """A `functionCall` part as a ToolCall; `index` counts the calls before it in the response."""
    if "functionCall" not in part:
        return None
    call = _object(part["functionCall"], "functionCall")
    name, call_id = call.get("name"), call.get("id")
    if not isinstance(name, str):
        raise ValueError("functionCall without a name")
    args = call.get("args") or {}
    call_id = call_id if isinstance(call_id, str) and call_id else f"call_{index}"
    return ToolCall(call_id, name, json.dumps(args, ensure_ascii=False, separators=(",", ":")))


def finish_reason(raw: str | None, *, has_calls: bool) -> FinishReason:
    reason = FINISH_REASONS.get(raw or "", "stop")
    return "tool_calls" if raw == "STOP" and has_calls else reason


def parse_usage(meta: Any, thoughts: bool = False) -> Usage | None:
    """usageMetadata: thinking tokens are billed as output, so they count as completion tokens (and, read
    with `thoughts`, as the reasoning part of them)."""
    if not isinstance(meta, dict):
        return None
    thinking = _count(meta, "thoughtsTokenCount")
    return Usage(
        prompt_tokens=_count(meta, "promptTokenCount"),
        completion_tokens=_count(meta, "candidatesTokenCount") + thinking,
        cache_read_tokens=_count(meta, "cachedContentTokenCount"),
        reasoning_tokens=thinking if thoughts else 0,
    )


def _count(meta: JSONObject, key: str) -> int:
    value = meta.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"usageMetadata.{key} is not an integer")
    return value


def _vector(item: Any) -> tuple[float, ...]:
    values = _list(_object(item, "embedding").get("values"), "values")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise ValueError("embedding values are not numbers")
    return tuple(float(v) for v in values)


def _object(value: Any, what: str) -> JSONObject:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a JSON array")
    return value
