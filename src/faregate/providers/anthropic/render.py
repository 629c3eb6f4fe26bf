"""Anthropic's Messages format for `/v1/messages` clients: the `Message` object (`render_response`) and the
exact SSE event sequence (`AnthropicStreamEncoder`), with faregate's `usage.cost` and `x-faregate`.

Grammar (https://docs.anthropic.com/en/docs/build-with-claude/streaming): `message_start`, then per content
block `content_block_start` / `content_block_delta`* / `content_block_stop`, then `message_delta` (stop
reason, cumulative usage) and `message_stop`; `ping` may come anywhere, `error` ends the stream.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Final

from faregate.canonical import (
    ChatResponse,
    Finish,
    FinishReason,
    JSONObject,
    ProviderEvent,
    ReasoningDelta,
    Start,
    StreamEvent,
    TextDelta,
    Thought,
    ToolArgsDelta,
    ToolCallStart,
    Usage,
)
from faregate.errors import FaregateError, anthropic_envelope
from faregate.providers.anthropic.response import parse_arguments
from faregate.providers.anthropic.thoughts import render_block, wire_signature
from faregate.providers.sse import encode_event
from faregate.providers.wire import dumps

# The other way, for clients: `error` (a stream cut short) has no Anthropic reason and reads as end_turn.
FINISH_REASONS: Final[Mapping[FinishReason, str]] = MappingProxyType(
    {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
)

MESSAGE_ID_PREFIX: Final = "msg_"
APPENDING: Final = frozenset({"text", "thinking"})  # block kinds whose deltas extend the open block


def stop_reason(finish: FinishReason) -> str:
    return FINISH_REASONS.get(finish, "end_turn")


def render_usage(usage: Usage) -> JSONObject:
    """Canonical usage in Anthropic's terms (input_tokens without the cached part)."""
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    return {
        "input_tokens": max(0, usage.prompt_tokens - cached),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    }


def message_id(rid: str) -> str:
    """Anthropic SDKs and tools expect `msg_` ids; other upstreams' ids (`chatcmpl-...`) are prefixed."""
    return rid if rid.startswith(MESSAGE_ID_PREFIX) else MESSAGE_ID_PREFIX + rid


def response_id(resp: ChatResponse, extras: Mapping[str, Any]) -> str:
    """`msg_<request id>`: unique per request, and `GET /v1/requests/{it}` finds the trace."""
    rid = extras.get("x-faregate", {}).get("request_id")
    return message_id(rid if isinstance(rid, str) and rid else resp.id)


def render_response(resp: ChatResponse, model: str, usage: Usage, extras: Mapping[str, Any]) -> JSONObject:
    """A `Message` for a `/v1/messages` client, with faregate's `x-faregate` object and `usage.cost`."""
    content: list[JSONObject] = [render_block(t) for t in resp.thoughts]  # thinking comes first
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


@dataclass(slots=True)
class AnthropicStreamEncoder:
    """Canonical events → Anthropic SSE for one client response.

    Usage is always reported (Anthropic clients expect it): `message_start` carries the prompt tokens known
    when the stream starts (an Anthropic upstream's own count, else faregate's tiktoken count, set on
    `Start.usage` by the handler); the final counts come in `message_delta`, which Anthropic's SDKs read
    as cumulative totals.
    """

    start_usage: ClassVar[bool] = True
    model: str
    request_id: str = ""  # the message id is `msg_<request id>` when given, whatever the upstream's
    started: bool = False
    next_block: int = 0  # index of the next content block
    open_block: int | None = None
    open_kind: str = ""  # "text" | "thinking" | "tool_use"
    tool_block: dict[int, int] = field(default_factory=dict)  # canonical tool index -> content block index

    def encode(self, ev: StreamEvent) -> bytes:
        match ev:
            case Start():
                return self._start(ev.id, ev.usage)
            case TextDelta():
                if not ev.text:
                    return b""
                head = self._start() + self._open("text", {"type": "text", "text": ""})
                delta = {"type": "text_delta", "text": ev.text}
                return head + event("content_block_delta", {"index": self.open_block, "delta": delta})
            case ToolCallStart():
                block = {"type": "tool_use", "id": ev.id, "name": ev.name, "input": {}}
                head = self._start() + self._open("tool_use", block)
                self.tool_block[ev.index] = self.next_block - 1
                return head
            case ToolArgsDelta():
                index = self.tool_block.get(ev.index)
                if index is None or not ev.arguments:
                    return b""
                # Deltas of an earlier tool call (interleaved upstream) go to that call's own block index.
                delta = {"type": "input_json_delta", "partial_json": ev.arguments}
                return self._start() + event("content_block_delta", {"index": index, "delta": delta})
            case Finish():
                return self.finish(ev, ev.usage or Usage(), {})
            case ReasoningDelta():
                return self._start() + self._thinking(ev)
            case ProviderEvent():
                return b""  # another format's own event

    def finish(self, finish: Finish, usage: Usage, extras: JSONObject) -> bytes:
        wire_usage: JSONObject = {**render_usage(usage)}
        if "cost" in extras:
            wire_usage["cost"] = extras["cost"]
        delta: JSONObject = {
            "type": "message_delta",
            "delta": {
                "stop_reason": "stop_sequence"
                if finish.stop_sequence is not None
                else stop_reason(finish.finish_reason),
                "stop_sequence": finish.stop_sequence,
            },
            "usage": wire_usage,
        }
        if "x-faregate" in extras:
            delta["x-faregate"] = extras["x-faregate"]
        closing = event("message_delta", delta) + event("message_stop", {"type": "message_stop"})
        return self._start() + self._close() + closing

    def error(self, err: FaregateError) -> bytes:
        return event("error", anthropic_envelope(err))

    def _start(self, rid: str | None = None, usage: Usage | None = None) -> bytes:
        """`message_start` and a `ping`, once, before anything else (even if the upstream sent no Start)."""
        if self.started:
            return b""
        self.started = True
        message: JSONObject = {
            "id": message_id(self.request_id or rid or uuid.uuid4().hex),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**render_usage(usage or Usage()), "output_tokens": 0},
        }
        return event("message_start", {"message": message}) + event("ping", {})

    def _thinking(self, ev: ReasoningDelta) -> bytes:
        """Anthropic's order: content_block_start (empty thinking and signature), thinking_delta*, then
        signature_delta and content_block_stop; a redacted thought is a whole block of its own."""
        thought = Thought(ev.text, ev.signature, ev.origin, ev.redacted)
        if ev.redacted:
            return self._open("redacted_thinking", render_block(thought)) + self._close()
        out = self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        if ev.text:
            delta: JSONObject = {"type": "thinking_delta", "thinking": ev.text}
            out += event("content_block_delta", {"index": self.open_block, "delta": delta})
        signature = wire_signature(thought)
        if signature:
            delta = {"type": "signature_delta", "signature": signature}
            out += event("content_block_delta", {"index": self.open_block, "delta": delta}) + self._close()
        return out

    def _open(self, kind: str, block: JSONObject) -> bytes:
        """Open a block of `kind` unless one is open already (text and thinking keep appending to their
        open block)."""
        if self.open_block is not None and kind == self.open_kind and kind in APPENDING:
            return b""
        head = self._close()
        self.open_block, self.open_kind = self.next_block, kind
        self.next_block += 1
        return head + event("content_block_start", {"index": self.open_block, "content_block": block})

    def _close(self) -> bytes:
        if self.open_block is None:
            return b""
        index, self.open_block, self.open_kind = self.open_block, None, ""
        return event("content_block_stop", {"index": index})


def event(kind: str, data: JSONObject) -> bytes:
    """One event as Anthropic writes it: the `event:` name repeated as the data's `type`. `dumps` copes with
    Decimal costs, frozen mappings and lone surrogates a client smuggled in as JSON escapes."""
    return encode_event(dumps({"type": kind, **data}).decode(), kind)
