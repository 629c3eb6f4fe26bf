"""Anthropic's streaming events from an upstream: a decoder (upstream SSE → canonical `StreamEvent`s). The
encoder for `/v1/messages` clients is render.py's.

Grammar (https://docs.anthropic.com/en/docs/build-with-claude/streaming): `message_start`, then per content
block `content_block_start` / `content_block_delta`* / `content_block_stop`, then `message_delta` (stop
reason, cumulative usage) and `message_stop`; `ping` may come anywhere, `error` ends the stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from faregate import jsonio
from faregate.canonical import (
    Finish,
    FinishReason,
    ReasoningDelta,
    Start,
    StreamEvent,
    TextDelta,
    ToolArgsDelta,
    ToolCallStart,
)
from faregate.providers.anthropic.errors import protocol_error, stream_error
from faregate.providers.anthropic.response import finish_reason, matched_stop, parse_usage
from faregate.providers.anthropic.thoughts import ORIGIN, parse_block, read_signature
from faregate.providers.errors import MALFORMED, StreamError
from faregate.providers.sse import SseEvent

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
            case "thinking" if block.get("thinking"):
                return [ReasoningDelta(block["thinking"], origin=ORIGIN)]
            case "redacted_thinking":
                t = parse_block(block)
                return [ReasoningDelta("", t.signature, origin=t.origin, redacted=True)]
            case _:  # an empty text or thinking block, server tools: nothing canonical yet
                return []

    def _block_delta(self, index: int, delta: Mapping[str, Any]) -> list[StreamEvent]:
        match delta["type"]:
            case "text_delta":
                return [TextDelta(delta["text"])] if delta["text"] else []
            case "input_json_delta" if index in self.tool_slot and delta["partial_json"]:
                # server_tool_use blocks stream input_json_delta too: only client tools have a slot
                return [ToolArgsDelta(self.tool_slot[index], delta["partial_json"])]
            case "thinking_delta" if delta["thinking"]:
                return [ReasoningDelta(delta["thinking"], origin=ORIGIN)]
            case "signature_delta":
                # the thinking block's last delta: it ends the thought (before its content_block_stop)
                signature, origin = read_signature(delta["signature"])
                return [ReasoningDelta("", signature, origin=origin)] if signature else []
            case _:  # citations_delta, empty fragments
                return []

    def _take_usage(self, usage: Mapping[str, Any]) -> None:
        """message_start carries input and cache counts; message_delta the cumulative output count and, in
        newer API versions, final input/cache counts too: a present value replaces the earlier one."""
        for key in USAGE_KEYS:
            value = usage.get(key)
            if value is not None:
                self.usage[key] = value
