"""Server-sent events: framing bytes into events however TCP split them, and writing events.

Follows the WHATWG event-stream rules that matter for LLM APIs: lines end in LF, CRLF or CR; a blank
line dispatches; `data:` lines join with LF; `event:` names the event; comments (`:`) are ignored; one
optional space after the colon is stripped.

Linear in its input: bytes are appended to one buffer and every byte is searched for a line end once
(`scanned` counts them, so tests can check it), whatever the chunking. An event larger than
`max_event_bytes` (its data lines plus an unfinished line) raises `SseEventTooLarge` before it is
buffered further: an upstream cannot make the gateway hold an unbounded event.
"""

from __future__ import annotations

import re
from typing import Final

from faregate.values import frozen

_EOL: Final = re.compile(rb"[\r\n]")
DEFAULT_MAX_EVENT_BYTES: Final = 8 * 1024 * 1024


class SseEventTooLarge(ValueError):
    """One event (or one line) grew past the decoder's bound."""


@frozen
class SseEvent:
    data: str
    event: str | None = None


class SseDecoder:
    """Incremental: `feed()` any chunk of bytes, get the events completed by it; `close()` at EOF."""

    __slots__ = (
        "_buf",
        "_data",
        "_data_bytes",
        "_event",
        "_pending_cr",
        "_scan",
        "max_event_bytes",
        "scanned",
    )

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._buf = bytearray()
        self._scan = 0  # bytes of `_buf` already searched for a line end (an unfinished line)
        self._data: list[str] = []
        self._data_bytes = 0
        self._event: str | None = None
        self._pending_cr = False
        self.max_event_bytes = max_event_bytes
        self.scanned = 0  # bytes searched for line ends so far: at most every byte fed, once

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self._pending_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the LF of a CRLF split across two chunks
        self._pending_cr = False
        if b"\r" not in chunk:
            return self._feed_lf(chunk)
        buf = self._buf
        buf += chunk
        out: list[SseEvent] = []
        start, n = 0, len(buf)
        pos = self._scan
        while True:
            m = _EOL.search(buf, pos)
            if m is None:
                self.scanned += n - pos
                break
            end = m.start()
            self.scanned += end + 1 - pos
            if buf[end] == 0x0A:  # LF
                nxt = end + 1
            elif end == n - 1:
                nxt = end + 1  # a CR at the very end: maybe half a CRLF
                self._pending_cr = True
            else:
                nxt = end + 2 if buf[end + 1] == 0x0A else end + 1
            self._line(bytes(buf[start:end]), out)
            start = pos = nxt
        if start:
            del buf[:start]
        self._scan = len(buf)
        if self._data_bytes + len(buf) > self.max_event_bytes:
            raise SseEventTooLarge(f"an event is larger than {self.max_event_bytes} bytes")
        return out

    def _feed_lf(self, chunk: bytes) -> list[SseEvent]:
        """`feed` for a chunk whose lines all end in LF (what LLM APIs send): split in one pass. The
        buffered unfinished line never holds a line end, so only the new bytes are searched."""
        buf = self._buf
        self.scanned += len(chunk)
        last = chunk.rfind(b"\n")
        out: list[SseEvent] = []
        if last >= 0:
            head = chunk[:last]
            lines = (bytes(buf) + head if buf else head).split(b"\n")
            buf.clear()
            buf += chunk[last + 1 :]
            self._lines(lines, out)
        else:
            buf += chunk
        self._scan = len(buf)
        if self._data_bytes + len(buf) > self.max_event_bytes:
            raise SseEventTooLarge(f"an event is larger than {self.max_event_bytes} bytes")
        return out

    def _lines(self, lines: list[bytes], out: list[SseEvent]) -> None:
        """`_line` for each of `lines`, with the two lines LLM streams are made of (`data: ...` and the
        blank line that dispatches) handled here, without a call each."""
        limit = self.max_event_bytes
        for raw in lines:
            if not raw:
                data = self._data
                if data:
                    out.append(SseEvent(data[0] if len(data) == 1 else "\n".join(data), self._event))
                    self._data = []
                self._event, self._data_bytes = None, 0
            elif raw[:6] == b"data: ":
                self._data_bytes += len(raw)
                if self._data_bytes > limit:
                    raise SseEventTooLarge(f"an event is larger than {limit} bytes")
                self._data.append(raw[6:].decode("utf-8", "replace"))
            else:
                self._line(raw, out)

    def close(self) -> list[SseEvent]:
        """End of stream: a final line without its newline is processed; an undispatched event is dropped
        (as the spec says), unless it has data, which LLM upstreams sometimes send without a blank line."""
        out: list[SseEvent] = []
        if self._buf:
            self._line(bytes(self._buf), out)
            self._buf.clear()
            self._scan = 0
        if self._data:
            out.append(SseEvent("\n".join(self._data), self._event))
            self._data, self._event, self._data_bytes = [], None, 0
        return out

    def _line(self, raw: bytes, out: list[SseEvent]) -> None:
        if not raw:
            if self._data:
                out.append(SseEvent("\n".join(self._data), self._event))
            self._data, self._event, self._data_bytes = [], None, 0
            return
        if raw.startswith(b"data:"):  # most lines: read without decoding the field name
            self._data_bytes += len(raw)
            if self._data_bytes > self.max_event_bytes:
                raise SseEventTooLarge(f"an event is larger than {self.max_event_bytes} bytes")
            self._data.append(raw[6 if raw[5:6] == b" " else 5 :].decode("utf-8", "replace"))
            return
        if raw[:1] == b":":
            return
        line = raw.decode("utf-8", "replace")
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_bytes += len(raw)
            if self._data_bytes > self.max_event_bytes:
                raise SseEventTooLarge(f"an event is larger than {self.max_event_bytes} bytes")
            self._data.append(value)
        elif name == "event":
            self._event = value


def encode_event(data: str, event: str | None = None) -> bytes:
    """One event in wire form. `data` with newlines becomes several `data:` lines."""
    head = f"event: {event}\n" if event else ""
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return (head + body + "\n").encode()
