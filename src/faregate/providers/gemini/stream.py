"""Gemini's `streamGenerateContent?alt=sse` → canonical stream events.

Every `data:` is a whole GenerateContentResponse chunk; there is no terminator event, so `close()`
emits the `Finish` from the last finishReason and usageMetadata seen. Thought parts are `ReasoningDelta`s;
a `thoughtSignature` on an answer part is a `ReasoningDelta` with no text ahead of that part's event.
"""

from __future__ import annotations

from dataclasses import dataclass

from faregate.canonical import (
    Finish,
    JSONObject,
    Start,
    StreamEvent,
    TextDelta,
    ToolArgsDelta,
    ToolCallStart,
    Usage,
)
from faregate.providers.gemini.errors import protocol_error, stream_error
from faregate.providers.gemini.response import (
    finish_reason,
    first_candidate,
    is_blocked,
    model_version,
    parse_usage,
    part_text,
    part_tool_call,
    response_id,
)
from faregate.providers.gemini.thoughts import reasoning_delta
from faregate.providers.sse import SseEvent
from faregate.providers.wire import load_object


@dataclass(slots=True)
class GeminiStreamDecoder:
    """One per upstream response: `feed()` each SSE event, `close()` at EOF (never Finish before)."""

    started: bool = False
    calls: int = 0  # function calls seen so far: the next call's index
    raw_reason: str | None = None  # the latest candidate finishReason
    blocked: bool = False  # promptFeedback.blockReason: the prompt was refused
    usage: Usage | None = None  # the latest usageMetadata (each chunk carries the running totals)
    thoughts: bool = False  # also decode thought parts and signatures (see GeminiAdapter)

    def feed(self, ev: SseEvent) -> list[StreamEvent]:
        """Events for one chunk. Raises `StreamError` (a ValueError) for an `error` chunk (Google's
        envelope, sent after the 200) or a chunk that is not a GenerateContentResponse."""
        try:
            chunk = load_object(ev.data, "Gemini stream chunk")
        except ValueError as e:
            raise protocol_error(str(e)) from None
        if isinstance(chunk.get("error"), dict):
            raise stream_error(chunk["error"])
        try:
            return self._chunk(chunk)
        except ValueError as e:
            raise protocol_error(f"Gemini stream chunk: {e}") from None

    def close(self) -> list[StreamEvent]:
        """The upstream closed the stream. Gemini's last chunk carries a finishReason: without one
        (nothing received, or cut short) the stream ended in error, not in an answer."""
        if self.blocked:
            return [Finish("content_filter", self.usage)]
        if not self.started or self.raw_reason is None:
            return [Finish("error", self.usage)]
        return [Finish(finish_reason(self.raw_reason, has_calls=self.calls > 0), self.usage)]

    def _chunk(self, chunk: JSONObject) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if not self.started:
            self.started = True
            out.append(Start(response_id(chunk), model_version(chunk)))
        self.usage = parse_usage(chunk.get("usageMetadata"), self.thoughts) or self.usage
        self.blocked = self.blocked or is_blocked(chunk)
        parts, reason = first_candidate(chunk)
        self.raw_reason = reason or self.raw_reason
        for part in parts:
            out.extend(self._part(part))
        return out

    def _part(self, part: JSONObject) -> list[StreamEvent]:
        # The plain answer's rule (thoughts.reasoning_delta); a signature on an answer part signs the
        # reasoning before it, so it goes first.
        delta = reasoning_delta(part) if self.thoughts else None
        out: list[StreamEvent] = [] if delta is None else [delta]
        if part.get("thought") is True and self.thoughts:
            return out
        text = part_text(part)
        if text:
            return [*out, TextDelta(text)]
        call = part_tool_call(part, self.calls)
        if call is None:
            return out  # empty text carrying a thoughtSignature, executable code, ...
        index, self.calls = self.calls, self.calls + 1
        # A functionCall arrives whole: its start and all of its arguments at once.
        return [*out, ToolCallStart(index, call.id, call.name), ToolArgsDelta(index, call.arguments)]
