"""Canonical response → what a Gemini client reads: a `GenerateContentResponse`, or its chunks as
`streamGenerateContent?alt=sse` writes them (each `data:` a whole response), with faregate's account of
the answer (`x-faregate`, and `cost` in `usageMetadata`), and Google's error envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Final

from faregate.canonical import (
    ChatResponse,
    Finish,
    FinishReason,
    JSONObject,
    ReasoningDelta,
    Start,
    StreamEvent,
    TextDelta,
    Thought,
    ToolArgsDelta,
    ToolCall,
    ToolCallStart,
    Usage,
)
from faregate.errors import FaregateError, google_envelope
from faregate.providers.gemini.request import parse_arguments
from faregate.providers.gemini.thoughts import ORIGIN, client_parts, sign, thought_part
from faregate.providers.sealed import carried
from faregate.providers.sse import encode_event
from faregate.providers.wire import dumps

FINISH_REASONS: Final[Mapping[FinishReason, str]] = MappingProxyType(
    {
        "stop": "STOP",
        "length": "MAX_TOKENS",
        "tool_calls": "STOP",
        "content_filter": "SAFETY",
        "error": "OTHER",
    }
)
EXTRAS_KEY: Final = "x-faregate"


def render_usage(usage: Usage, extras: Mapping[str, Any]) -> JSONObject:
    """`usageMetadata`: thinking tokens apart from the candidates' (Gemini bills both as output)."""
    thoughts = min(usage.reasoning_tokens, usage.completion_tokens)
    out: JSONObject = {
        "promptTokenCount": usage.prompt_tokens,
        "candidatesTokenCount": usage.completion_tokens - thoughts,
        "totalTokenCount": usage.total_tokens,
    }
    if usage.cache_read_tokens:
        out["cachedContentTokenCount"] = usage.cache_read_tokens
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    if "cost" in extras:
        out["cost"] = extras["cost"]
    return out


def render_call(call: ToolCall) -> JSONObject:
    return {"functionCall": {"id": call.id, "name": call.name, "args": parse_arguments(call.arguments)}}


def response_id(extras: Mapping[str, Any], fallback: str) -> str:
    """The exchange's request id (so `GET /v1/requests/{it}` finds the trace), else the upstream's."""
    rid = extras.get(EXTRAS_KEY, {}).get("request_id")
    return rid if isinstance(rid, str) and rid else fallback


def chunk(model: str, rid: str, parts: list[JSONObject], finish: str | None = None) -> JSONObject:
    candidate: JSONObject = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": model, "responseId": rid}


def render_response(resp: ChatResponse, model: str, usage: Usage, extras: Mapping[str, Any]) -> JSONObject:
    parts: list[JSONObject] = [{"text": resp.text}] if resp.text or not resp.tool_calls else []
    parts += [render_call(c) for c in resp.tool_calls]
    parts = client_parts(resp.thoughts, parts)
    out = chunk(model, response_id(extras, resp.id), parts, FINISH_REASONS[resp.finish_reason])
    out["usageMetadata"] = render_usage(usage, extras)
    if EXTRAS_KEY in extras:
        out[EXTRAS_KEY] = extras[EXTRAS_KEY]
    return out


def sse(data: JSONObject) -> bytes:
    return encode_event(dumps(data).decode())


@dataclass(slots=True)
class GeminiStreamEncoder:
    """Canonical events → `streamGenerateContent?alt=sse` chunks for one client response.

    Text goes out as it comes. A function call arrives whole in Gemini's grammar, so a call's argument
    fragments are held until the call is complete: at the next text, or in the last chunk, which also
    carries the finishReason, the usage and `x-faregate`. Gemini's stream has no start event."""

    start_usage: ClassVar[bool] = False
    model: str
    request_id: str = ""
    upstream_id: str = ""
    calls: dict[int, list[str]] = field(default_factory=dict)  # index -> [id, name, arguments so far]
    signed: list[Thought] = field(default_factory=list)  # signed thoughts, for the next answer part

    @property
    def rid(self) -> str:
        return self.request_id or self.upstream_id

    def encode(self, ev: StreamEvent) -> bytes:
        match ev:
            case Start():
                self.upstream_id = self.upstream_id or ev.id
                return b""
            case TextDelta() if ev.text:
                held = self._held()
                parts = self._signed([*held, {"text": ev.text}])
                return sse(chunk(self.model, self.rid, parts))
            case ReasoningDelta() if not ev.choice:
                return self._thought(ev)
            case ToolCallStart():
                self.calls[ev.index] = [ev.id, ev.name, ""]
                return b""
            case ToolArgsDelta() if ev.index in self.calls:
                self.calls[ev.index][2] += ev.arguments
                return b""
            case Finish():
                return self.finish(ev, ev.usage or Usage(), {})
            case _:
                return b""

    def _thought(self, ev: ReasoningDelta) -> bytes:
        """Thought text as a thought part; a signature waits for the answer part it goes on."""
        if ev.signature is not None:
            self.signed.append(Thought("", ev.signature, ev.origin, ev.redacted))
        return sse(chunk(self.model, self.rid, [thought_part(ev.text)])) if ev.text else b""

    def _signed(self, parts: list[JSONObject]) -> list[JSONObject]:
        carry = carried(self.signed, ORIGIN)
        if carry is not None:
            sign(parts, carry)
            self.signed.clear()
        return parts

    def finish(self, finish: Finish, usage: Usage, extras: JSONObject) -> bytes:
        parts = self._signed(self._held() or [{"text": ""}])
        out = chunk(self.model, self.rid, parts, FINISH_REASONS[finish.finish_reason])
        out["usageMetadata"] = render_usage(usage, extras)
        if EXTRAS_KEY in extras:
            out[EXTRAS_KEY] = extras[EXTRAS_KEY]
        return sse(out)

    def error(self, err: FaregateError) -> bytes:
        return sse(google_envelope(err))

    def _held(self) -> list[JSONObject]:
        parts = [render_call(ToolCall(*self.calls[i])) for i in sorted(self.calls)]
        self.calls.clear()
        return parts
