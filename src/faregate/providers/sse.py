"""Server-sent events: framing bytes into events however TCP split them, and writing events.

Follows the WHATWG event-stream rules that matter for LLM APIs: lines end in LF, CRLF or CR; a blank
line dispatches; `data:` lines join with LF; `event:` names the event; comments (`:`) are ignored; one
optional space after the colon is stripped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    data: str
    event: str | None = None


class SseDecoder:
    """Incremental: `feed()` any chunk of bytes, get the events completed by it; `close()` at EOF."""

    __slots__ = ("_buf", "_data", "_event", "_pending_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across two chunks
        self._pending_cr = False
        buf = self._buf + chunk
        out: list[SseEvent] = []
        start = 0
        n = len(buf)
        while start < n:
            lf = buf.find(b"\n", start)
            cr = buf.find(b"\r", start)
            if lf < 0 and cr < 0:
                break
            if cr < 0 or (0 <= lf < cr):
                end, nxt = lf, lf + 1
            elif cr == n - 1:
                end, nxt = cr, cr + 1  # a CR at the very end: maybe half a CRLF
                self._pending_cr = True
            else:
                end = cr
                nxt = cr + 2 if buf[cr + 1 : cr + 2] == b"\n" else cr + 1
            self._line(buf[start:end].decode("utf-8", "replace"), out)
            start = nxt
        self._buf = buf[start:]
        return out

    def close(self) -> list[SseEvent]:
        """End of stream: a final line without its newline is processed; an undispatched event is dropped
        (as the spec says), unless it has data, which LLM upstreams sometimes send without a blank line."""
        out: list[SseEvent] = []
        if self._buf:
            self._line(self._buf.decode("utf-8", "replace"), out)
            self._buf = b""
        if self._data:
            out.append(SseEvent("\n".join(self._data), self._event))
            self._data, self._event = [], None
        return out

    def _line(self, line: str, out: list[SseEvent]) -> None:
        if not line:
            if self._data:
                out.append(SseEvent("\n".join(self._data), self._event))
            self._data, self._event = [], None
            return
        if line.startswith(":"):
            return
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value


def encode_event(data: str, event: str | None = None) -> bytes:
    """One event in wire form. `data` with newlines becomes several `data:` lines."""
    head = f"event: {event}\n" if event else ""
    body = "".join(f"data: {line}\n" for line in data.split("\n"))
    return (head + body + "\n").encode()
