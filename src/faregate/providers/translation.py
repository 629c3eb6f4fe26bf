"""The translated path of a stream, between the channel's decoder and the client's encoder: faregate's own
stop sequences (`stops.py`), the client's view of thoughts (`reasoning.py`), and a note of what the upstream
generated (for an estimate of its usage when it reports none).

`server/endpoint.py::_stream` writes what `Translation.encode` returns for each batch of events; the
same-format relay (`openai/samestream.py`) runs the chunks it does not relay itself through one too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from faregate.canonical import Finish, ReasoningDelta, Start, StreamEvent, TextDelta, ToolArgsDelta, Usage
from faregate.providers.base import StreamEncoder
from faregate.providers.reasoning import ThoughtView, view_event
from faregate.providers.stops import StopFilter

# A batch of a stream's events → the client's bytes for it up to its `Finish`, and that `Finish` (None: the
# answer goes on).
Render = Callable[[list[StreamEvent]], tuple[bytes, Finish | None]]


def end_of(batch: list[StreamEvent]) -> Finish | None:
    """The batch's `Finish` (always its last event when it has one: `OpenStream.batches`)."""
    last = batch[-1] if batch else None
    return last if isinstance(last, Finish) else None


@dataclass(slots=True)
class Translation:
    """One stream's events as the client's format writes them."""

    encoder: StreamEncoder
    view: ThoughtView
    text: list[str]  # what the upstream generated: answer text, reasoning (billed), tool arguments
    prompt_tokens: Callable[[], int]  # asked only by an encoder that reports the prompt at the start
    stops: StopFilter | None = None  # the stop sequences faregate matches itself, if any

    def encode(self, batch: list[StreamEvent]) -> tuple[bytes, Finish | None]:
        """A `Render`: the events after stop sequences, each as the client's format writes it."""
        encoder, view, stops = self.encoder, self.view, self.stops
        events = batch if stops is None else [e for raw in batch for e in stops.feed(raw)]
        out: list[bytes] = []
        for ev in events:
            if isinstance(ev, Finish):
                return b"".join(out), ev
            if isinstance(ev, Start):
                if ev.usage is None and encoder.start_usage:
                    ev = replace(ev, usage=Usage(self.prompt_tokens(), 0, estimated=True))  # counted so far
            elif isinstance(ev, TextDelta | ReasoningDelta):
                self.text.append(ev.text)
            elif isinstance(ev, ToolArgsDelta):
                self.text.append(ev.arguments)
            shown = ev if view == "text" else view_event(ev, view)
            if shown is not None:
                out.append(encoder.encode(shown))
        return b"".join(out), None
