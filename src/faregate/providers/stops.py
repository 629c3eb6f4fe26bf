"""Stop sequences matched by faregate itself, for a client that must be told which one ended the answer
(Anthropic's `stop_reason: stop_sequence`, `stop_sequence: "..."`) when the upstream does not say (OpenAI
and Gemini report only "stop"). Those sequences are not sent upstream; the answer is cut here instead.

Streaming holds back the last `len(longest) - 1` characters, which could be the start of a match. After a
match the rest of the upstream's stream is read but not shown, so its usage (what it billed) is still known.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from faregate.canonical import (
    ChatResponse,
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolArgsDelta,
    ToolCallStart,
)


def first_stop(text: str, stops: tuple[str, ...]) -> tuple[int, str] | None:
    """(position, sequence) of the stop sequence that completes first in `text`, as a model generating it
    would meet it (the longer one when two end at the same place). Where the text arrived in pieces
    does not matter: the answer is the same for a whole answer and for a stream."""
    hits = [(i + len(s), i, s) for s in stops if s and (i := text.find(s)) >= 0]
    if not hits:
        return None
    _, i, s = min(hits)
    return i, s


def apply_stops(resp: ChatResponse, stops: tuple[str, ...]) -> ChatResponse:
    """A whole answer cut at its first stop sequence (tool calls after it are not part of the answer)."""
    hit = first_stop(resp.text, stops) if stops else None
    if hit is None:
        return resp
    cut, seq = hit
    return replace(resp, text=resp.text[:cut], tool_calls=(), finish_reason="stop", stop_sequence=seq)


@dataclass(slots=True)
class StopFilter:
    """One per streamed answer: `feed` each upstream event, send on what it returns."""

    stops: tuple[str, ...]
    held: str = ""
    matched: str | None = None
    _keep: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._keep = max((len(s) for s in self.stops), default=1) - 1

    def feed(self, ev: StreamEvent) -> list[StreamEvent]:
        if not self.stops:
            return [ev]
        match ev:
            case TextDelta():
                return self._text(ev.text)
            case ToolCallStart() | ToolArgsDelta() | ReasoningDelta():
                return [] if self.matched is not None else [*self._flush(), ev]
            case Finish():
                if self.matched is not None:
                    return [replace(ev, finish_reason="stop", stop_sequence=self.matched)]
                return [*self._flush(), ev]
            case _:
                return [ev]

    def _text(self, text: str) -> list[StreamEvent]:
        if self.matched is not None:
            return []
        buf = self.held + text
        hit = first_stop(buf, self.stops)
        if hit is not None:
            self.matched, self.held = hit[1], ""
            return [TextDelta(buf[: hit[0]])] if hit[0] else []
        cut = max(0, len(buf) - self._keep)
        self.held = buf[cut:]
        return [TextDelta(buf[:cut])] if cut else []

    def _flush(self) -> list[StreamEvent]:
        held, self.held = self.held, ""
        return [TextDelta(held)] if held else []
