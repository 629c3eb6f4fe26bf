"""OpenAI `chat.completion.chunk` SSE stream → canonical `StreamEvent`s: one decoder per upstream response.

OpenAI sends a tool call's id and name on its first fragment (by `index`), then arguments only; usage
arrives in a last chunk with `choices: []` (we always ask for it); `data: [DONE]` ends the stream. With `n`
every choice streams under its own `index`: events carry it as `choice`, with the tokens' logprobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from faregate import jsonio
from faregate.canonical import (
    Finish,
    FinishReason,
    Start,
    StreamEvent,
    TextDelta,
    ToolArgsDelta,
    ToolCallStart,
    Usage,
)
from faregate.providers.errors import protocol_error
from faregate.providers.openai.response import arguments_text, parse_finish_reason, parse_usage
from faregate.providers.openai.thoughts import THOUGHT_KEYS, delta_events
from faregate.providers.sse import SseEvent
from faregate.providers.wire import mask_secrets

DONE = "[DONE]"


@dataclass(slots=True)
class OpenAIStreamDecoder:
    """`feed()` is the whole state machine: started → deltas → (finish reason, usage) → finished."""

    started: bool = False
    finished: bool = False
    finish_reason: FinishReason = "stop"
    reason_seen: bool = False  # a choice carried `finish_reason`: the answer is complete
    usage: Usage | None = None
    slots: dict[tuple[int, int], int] = field(default_factory=dict)  # (choice, upstream call index) → index
    more: dict[int, FinishReason] = field(default_factory=dict)  # finish reasons of choices after 0

    def feed(self, ev: SseEvent) -> list[StreamEvent]:
        if self.finished:
            return []
        if ev.data == DONE:
            return self._finish()
        return self.chunk(load_chunk(ev.data))

    def chunk(self, data: Mapping[str, Any]) -> list[StreamEvent]:
        """The events of one chunk (`load_chunk`'s), before the stream's end."""
        out: list[StreamEvent] = []
        start = self.begin(data)
        if start is not None:
            out.append(start)
        self.read_usage(data)
        for choice in data.get("choices") or ():  # vLLM sends `choices: null` with usage
            if isinstance(choice, dict):
                self._choice(choice, out)
        return out

    def begin(self, data: Mapping[str, Any]) -> Start | None:
        """`Start` for the stream's first chunk, None for the others."""
        if self.started:
            return None
        self.started = True
        return Start(str(data.get("id") or ""), str(data.get("model") or ""))

    def read_usage(self, data: Mapping[str, Any]) -> None:
        """The usage a chunk carries, if any (the last one wins)."""
        if data.get("usage") is None and "x_groq" not in data:
            return  # most chunks: nothing to read
        usage = parse_usage(_usage_of(data))
        if usage is not None:
            self.usage = usage

    def ended(self, n: int, reason: object) -> None:
        """Choice `n` carried a finish reason: for the first one, the answer is complete."""
        if n == 0:
            self.finish_reason = parse_finish_reason(reason)
            self.reason_seen = True
        else:
            self.more[n] = parse_finish_reason(reason)

    def close(self) -> list[StreamEvent]:
        """EOF. Without `[DONE]` or a `finish_reason` the answer was cut short: `Finish("error")`."""
        if self.finished:
            return []
        if not self.reason_seen:
            self.finish_reason = "error"
        return self._finish()

    def _finish(self) -> list[StreamEvent]:
        if self.finished:
            return []
        self.finished = True
        return [Finish(self.finish_reason, self.usage, more=tuple(sorted(self.more.items())))]

    def _choice(self, choice: Mapping[str, Any], out: list[StreamEvent]) -> None:
        n = choice.get("index", 0)
        n = n if isinstance(n, int) and n >= 0 else 0
        delta = choice.get("delta")
        if isinstance(delta, dict):
            if not THOUGHT_KEYS.isdisjoint(delta):
                out.extend(delta_events(delta, n))
            text = delta.get("content") or delta.get("refusal")
            tokens = _logprobs_of(choice) if choice.get("logprobs") is not None else ()
            if (isinstance(text, str) and text) or tokens:
                out.append(TextDelta(text if isinstance(text, str) else "", n, tokens))
            calls = delta.get("tool_calls")
            if calls:
                for position, call in enumerate(calls):
                    if isinstance(call, dict):
                        self._tool_call(n, position, call, out)
        reason = choice.get("finish_reason")
        if reason is not None:
            self.ended(n, reason)

    def _tool_call(self, n: int, position: int, call: Mapping[str, Any], out: list[StreamEvent]) -> None:
        fn = call.get("function")
        fn = fn if isinstance(fn, dict) else {}
        index = call.get("index")
        mine = sum(1 for c, _ in self.slots if c == n)  # this choice's calls so far
        if not isinstance(index, int):
            # A few servers omit `index` and send each call whole: a new id means a new call.
            index = -1 - mine if call.get("id") or not mine else -mine
        slot = self.slots.get((n, index))
        if slot is None:
            slot = self.slots[(n, index)] = mine
            out.append(ToolCallStart(slot, str(call.get("id") or ""), str(fn.get("name") or ""), n))
        arguments = arguments_text(fn.get("arguments"))
        if arguments:
            out.append(ToolArgsDelta(slot, arguments, n))


def _logprobs_of(choice: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """The tokens of a chunk's `logprobs.content` (empty when the chunk has none)."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    return tuple(t for t in content if isinstance(t, dict)) if isinstance(content, list) else ()


def _usage_of(chunk: Mapping[str, Any]) -> object:
    usage = chunk.get("usage")
    groq = chunk.get("x_groq")
    if usage is None and isinstance(groq, dict):
        return groq.get("usage")  # Groq's place for it
    return usage


def load_chunk(data: str) -> Mapping[str, Any]:
    """One event's data as a chunk object; an upstream's error event or malformed data raises."""
    try:
        chunk = jsonio.loads(data)
    except ValueError:
        raise protocol_error("stream: a chunk is not valid JSON") from None
    if not isinstance(chunk, dict):
        raise protocol_error("stream: a chunk is not a JSON object")
    error = chunk.get("error")
    if error is not None:
        # OpenAI reports a failure after the 200 as a data event carrying its error envelope.
        message = error.get("message") if isinstance(error, dict) else error
        raise protocol_error(f"stream: upstream error: {mask_secrets(str(message))}")
    return chunk
