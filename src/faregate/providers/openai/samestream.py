"""The same-format path for streams: an `api: openai` upstream's `chat.completion.chunk` stream relayed to an
OpenAI chat client.

The translated path decodes each chunk into canonical events (`stream.py`), passes them through faregate's
stop sequences and the client's view of thoughts, and encodes them again (`render.py::OpenAIStreamEncoder`).
`SameStream` is that decoder and that encoder in one. The chunks most of a stream is made of (the first one,
a text delta of the first choice, a finish reason, the usage chunk) go straight to the client's bytes, built
from the encoder's constant pieces, with the decoder's state kept as it would keep it; any other chunk (tool
calls, reasoning, logprobs, `n` > 1, a shape it does not know) goes through the decoder and the encoder,
whose state it shares, so the client reads the same bytes either way. Its events are the decoder's events,
which are what the pipeline reads (the first event, the finish reason and usage, a stream cut short), and
`text` is what they generated (for an estimate when the upstream reports no usage).

It is taken only where the translated path adds nothing of its own between decoder and encoder: a channel
that leaves stop sequences to faregate (`UpstreamCall.local_stops`) is translated. `tests/unit/
test_samestream.py` runs a corpus of upstream streams, split anywhere, through both paths and asserts the same
bytes, events and text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from faregate.canonical import StreamEvent, TextDelta
from faregate.providers.openai.adapter import OpenAIInbound
from faregate.providers.openai.render import OpenAIStreamEncoder
from faregate.providers.openai.stream import DONE, OpenAIStreamDecoder, load_chunk
from faregate.providers.openai.thoughts import THOUGHT_KEYS
from faregate.providers.reasoning import ThoughtView
from faregate.providers.sse import SseEvent
from faregate.providers.translation import Translation

_INBOUND: Final = OpenAIInbound()  # whose encoder the relay writes with


@dataclass(slots=True)
class SameStream:
    """One upstream stream relayed to one client: `feed`/`close` as a decoder, `take` the client's bytes
    made since the last `take`; `encoder` writes the closing events and errors."""

    encoder: OpenAIStreamEncoder
    view: ThoughtView = "text"
    decoder: OpenAIStreamDecoder = field(default_factory=OpenAIStreamDecoder)
    text: list[str] = field(default_factory=list)  # generated so far: answer text, reasoning, tool arguments
    _out: list[bytes] = field(default_factory=list)
    _translation: Translation | None = None  # for the chunks not relayed directly, made on the first

    def feed(self, ev: SseEvent) -> list[StreamEvent]:
        dec = self.decoder
        if dec.finished or ev.data == DONE:
            return dec.feed(ev)
        chunk = load_chunk(ev.data)
        events = self._known(chunk)
        if events is None:
            events = dec.chunk(chunk)
            self._encode(events)
        return events

    def close(self) -> list[StreamEvent]:
        return self.decoder.close()

    def take(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _known(self, chunk: Mapping[str, Any]) -> list[StreamEvent] | None:
        """A chunk of the shapes most of a stream is made of, relayed; None for any other."""
        text: object = None
        reason: object = None
        choices = chunk.get("choices")
        if choices:
            if type(choices) is not list or len(choices) != 1:
                return None
            choice = choices[0]
            if type(choice) is not dict or choice.get("index", 0) != 0 or choice.get("logprobs") is not None:
                return None
            delta = choice.get("delta")
            if type(delta) is dict:
                if not THOUGHT_KEYS.isdisjoint(delta) or delta.get("tool_calls"):
                    return None
                text = delta.get("content") or delta.get("refusal")
            reason = choice.get("finish_reason")
        dec, out = self.decoder, self._out
        events: list[StreamEvent] = []
        start = dec.begin(chunk)
        if start is not None:
            events.append(start)
            out.append(self.encoder.encode(start))
        dec.read_usage(chunk)
        if isinstance(text, str) and text:
            events.append(TextDelta(text))
            self.text.append(text)
            out.append(self.encoder.text(text))
        if reason is not None:
            dec.ended(0, reason)
        return events

    def _encode(self, events: list[StreamEvent]) -> None:
        """The decoder's events as the translated path writes them (the client's view of thoughts applied)."""
        if self._translation is None:
            self._translation = Translation(self.encoder, self.view, self.text, _never_asked)
        self._out.append(self._translation.encode(events)[0])


def _never_asked() -> int:
    raise AssertionError("an OpenAI stream reports the prompt's tokens at its end, not at its start")


def same_stream(model: str, include_usage: bool, request_id: str, view: ThoughtView) -> SameStream:
    """The relay of one stream, for a client that sees `model` (as `OpenAIInbound.stream_encoder`)."""
    return SameStream(_INBOUND.stream_encoder(model, include_usage, request_id), view)
