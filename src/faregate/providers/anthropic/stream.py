"""Anthropic's streaming events both ways: a decoder (upstream SSE → canonical `StreamEvent`s) and an encoder
(canonical events → the exact event sequence a `/v1/messages` client expects).

Grammar (https://docs.anthropic.com/en/docs/build-with-claude/streaming): `message_start`, then per content
block `content_block_start` / `content_block_delta`* / `content_block_stop`, then `message_delta` (stop
reason, cumulative usage) and `message_stop`; `ping` may come anywhere, `error` ends the stream.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from faregate import jsonio
from faregate.canonical import (
    Finish,
    FinishReason,
    JSONObject,
    Start,
    StreamEvent,
    TextDelta,
    ToolArgsDelta,
    ToolCallStart,
    Usage,
)
from faregate.errors import FaregateError, anthropic_envelope
from faregate.providers.anthropic.errors import protocol_error, stream_error
from faregate.providers.anthropic.response import (
    finish_reason,
    matched_stop,
    message_id,
    parse_usage,
    render_usage,
    stop_reason,
)
from faregate.providers.errors import MALFORMED, StreamError
from faregate.providers.sse import SseEvent, encode_event
from faregate.providers.wire import dumps

USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@dataclass(slots=True)
class AnthropicStreamDecoder:
    """One per upstream response. `feed()` is the whole state machine; an `error` event, malformed JSON, or
    an end without `message_stop` (see `close()`) raises `StreamError` so the server can end the client's
    stream with an error instead of a silently truncated answer."""

    usage: dict[str, int] = field(default_factory=dict)  # Anthropic's usage fields, latest value wins
    finish_reason: FinishReason = "stop"
    stop_sequence: str | None = None
    tool_slot: dict[int, int] = field(default_factory=dict)  # content block index -> tool call index
    finished: bool = False

    def feed(self, ev: SseEvent) -> list[StreamEvent]:
        if self.finished:
            return []
        try:
            data = jsonio.loads(ev.data)
        except ValueError:
            raise protocol_error(f"malformed event data in {ev.event or 'unnamed'} event") from None
        if not isinstance(data, dict):
            raise protocol_error("event data is not a JSON object")
        kind = data.get("type", ev.event)
        try:
            return self._dispatch(kind, data)
        except StreamError:  # an `error` event, already classified
            raise
        except MALFORMED as e:
            raise protocol_error(f"malformed {str(kind)[:40]} event ({type(e).__name__})") from None

    def close(self) -> list[StreamEvent]:
        """EOF. Without `message_stop` the answer may be cut anywhere, so it is a protocol error, not a
        `Finish`: a retryable `StreamError` the server turns into an error event for the client."""
        if not self.finished:
            raise protocol_error("stream ended before message_stop")
        return []

    def _dispatch(self, kind: object, data: Mapping[str, Any]) -> list[StreamEvent]:
        match kind:
            case "message_start":
                message = data["message"]
                self._take_usage(message.get("usage") or {})
                known = parse_usage(self.usage) if self.usage else None
                return [Start(id=message["id"], model=message["model"], usage=known)]
            case "content_block_start":
                return self._block_start(data["index"], data["content_block"])
            case "content_block_delta":
                return self._block_delta(data["index"], data["delta"])
            case "message_delta":
                reason = data["delta"].get("stop_reason")
                if reason is not None:
                    self.finish_reason = finish_reason(reason)
                    self.stop_sequence = matched_stop(data["delta"])
                self._take_usage(data.get("usage") or {})
                return []
            case "message_stop":
                self.finished = True
                return [Finish(self.finish_reason, parse_usage(self.usage), self.stop_sequence)]
            case "error":
                raise stream_error(data)
            case _:  # ping, content_block_stop, and event types added later
                return []

    def _block_start(self, index: int, block: Mapping[str, Any]) -> list[StreamEvent]:
        match block["type"]:
            case "tool_use":
                slot = self.tool_slot[index] = len(self.tool_slot)
                return [ToolCallStart(slot, block["id"], block["name"])]
            case "text" if block.get("text"):
                return [TextDelta(block["text"])]
            case _:  # an empty text block, thinking, server tools: nothing canonical yet
                return []

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[StreamEvent]:
        match delta["type"]:
            case "text_delta":
                return [TextDelta(delta["text"])] if delta["text"] else []
            case "input_json_delta" if index in self.tool_slot and delta["partial_json"]:
                # server_tool_use blocks stream input_json_delta too: only client tools have a slot
                return [ToolArgsDelta(self.tool_slot[index], delta["partial_json"])]
            case _:  # thinking_delta, signature_delta, citations_delta, empty fragments
                return []

    def _take_usage(self, usage: Mapping[str, Any]) -> None:
        """message_start carries input and cache counts; message_delta the cumulative output count and, in
        newer API versions, final input/cache counts too: a present value replaces the earlier one."""
        for key in USAGE_KEYS:
            value = usage.get(key)
            if value is not None:
                self.usage[key] = value


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
    open_kind: str = ""  # "text" | "tool_use"
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

    def _open(self, kind: str, block: JSONObject) -> bytes:
        """Open a block of `kind` unless one is open already (text keeps appending to its open block)."""
        if self.open_block is not None and kind == "text" == self.open_kind:
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
