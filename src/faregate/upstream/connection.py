"""One upstream connection (an `asyncio.Protocol`) and the response it is reading.

A connection carries one request at a time (no pipelining). Its response's body pieces are buffered as
they arrive; past `HIGH_WATER_BYTES` the transport stops reading until the reader has taken them. The
connection goes back to its pool only if its response was read to the end and may be kept alive;
anything else closes it. An idle connection the server closes tells the pool to forget it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Self, cast

from faregate.upstream.decode import ContentDecoder, decoder_for
from faregate.upstream.errors import ClientError, ReadTimeout, ServerDisconnected
from faregate.upstream.http1 import Framing, Headers, Origin, ResponseHead, ResponseParser

HIGH_WATER_BYTES = 256 * 1024  # buffered body bytes past which the transport stops reading
LOW_WATER_BYTES = 64 * 1024  # ... and below which it reads again


class Connection(asyncio.Protocol):
    """The protocol of one TCP (or TLS) connection to `origin`. `on_lost` is the pool's: it is called
    when the connection closes while idle."""

    def __init__(self, origin: Origin, on_lost: Callable[[Connection], None]) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0  # event-loop time it went back to the pool
        self.closed = False
        self._on_lost = on_lost
        self._parser: ResponseParser | None = None  # while a request is in flight
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._error: ClientError | None = None
        self._waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        sock = transport.get_extra_info("socket")
        if sock is not None:  # small requests and SSE events go out at once, not after Nagle's delay
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self._error is not None:
            self.close()  # bytes nobody asked for (an idle connection): it cannot be trusted again
            return
        try:
            pieces = parser.feed(data)
        except ClientError as e:
            self._fail(e)
            return
        if pieces:
            self._chunks += pieces
            self._buffered += sum(map(len, pieces))
            if self._buffered > HIGH_WATER_BYTES and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._ended()
        return False  # close the transport: nothing is ever sent after the server's end

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._ended()
        if self._parser is None:
            self._on_lost(self)

    def _ended(self) -> None:
        parser = self._parser
        if parser is not None and not parser.done and self._error is None:
            try:
                parser.feed_eof()
            except ClientError as e:
                self._fail(e)
                return
        self._wake()

    # --- used by the client and the response ---

    def send(self, data: bytes, *, no_body: bool = False) -> None:
        """Write one request (its bytes in one write); its response is parsed from now on."""
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ServerDisconnected("the upstream closed the connection before the request was sent")
        self._parser = ResponseParser(no_body=no_body)
        self._error = None
        self.transport.write(data)

    async def head(self, read_timeout_s: float | None) -> ResponseHead:
        """The response's head, once it has arrived."""
        parser = self._parser
        assert parser is not None
        while parser.head is None:
            if self._error is not None:
                raise self._error
            await self.wait(read_timeout_s)
        return parser.head

    def take(self) -> bytes:
        """Every body byte buffered so far (b"" for none); reading resumes if it had paused."""
        chunks = self._chunks
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks, self._buffered = [], 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def complete(self) -> bool:
        """The response was received to its end."""
        return self._parser is not None and self._parser.done

    def failed(self) -> ClientError | None:
        return self._error

    def reusable(self) -> bool:
        parser = self._parser
        return (
            not self.closed
            and self._error is None
            and parser is not None
            and parser.done
            and not parser.extra
            and parser.head is not None
            and parser.head.keep_alive
        )

    def idle(self) -> None:
        """Back in the pool: no request in flight."""
        self._parser, self._chunks, self._buffered = None, [], 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def wait(self, read_timeout_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        fut = self._waiter = loop.create_future()
        timer = (
            None
            if read_timeout_s is None
            else loop.call_later(read_timeout_s, _time_out, fut, read_timeout_s)
        )
        try:
            await fut
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        fut = self._waiter
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _fail(self, e: ClientError) -> None:
        self._error = e
        self.close()
        self._wake()


def _time_out(fut: asyncio.Future[None], after_s: float) -> None:
    if not fut.done():
        fut.set_exception(ReadTimeout(f"no data from the upstream for {after_s:g}s"))


class Response:
    """An upstream's answer: `status`, `headers`, the declared `content_length`, and the body read as it
    arrives with `readany()` (b"" at its end), decompressed. `release()` (or leaving `async with`)
    gives the connection back to the pool when the body was read to its end, else closes it."""

    __slots__ = ("_conn", "_decoder", "_read_timeout_s", "_release_to", "_released", "head")

    def __init__(
        self,
        conn: Connection,
        head: ResponseHead,
        read_timeout_s: float | None,
        release_to: Callable[[Connection], None],
    ) -> None:
        self.head = head
        self._conn = conn
        self._read_timeout_s = read_timeout_s
        self._release_to = release_to
        self._released = False
        bodyless = head.framing is Framing.NONE or head.content_length == 0
        self._decoder: ContentDecoder | None = None if bodyless else decoder_for(head.headers)

    @property
    def status(self) -> int:
        return self.head.status

    @property
    def reason(self) -> str:
        return self.head.reason

    @property
    def headers(self) -> Headers:
        return self.head.headers

    @property
    def content_length(self) -> int | None:
        return self.head.content_length

    async def readany(self) -> bytes:
        """The body bytes that have arrived (waiting for some if none has), b"" once it has all been read.
        Raises `ReadTimeout` after the read timeout without a byte, `BodyCutShort` if the connection
        closed early, `ProtocolError` for a malformed body."""
        conn, decoder = self._conn, self._decoder
        while True:
            if decoder is not None and decoder.pending and (out := decoder.more()):
                return out
            data = conn.take()
            if data:
                if decoder is None:
                    return data
                data = decoder.feed(data)
                if data:
                    return data
                continue
            error = conn.failed()
            if error is not None:
                raise error
            if conn.complete:
                if decoder is not None:
                    self._decoder = None
                    tail = decoder.finish()
                    if tail:
                        return tail
                return b""
            await conn.wait(self._read_timeout_s)

    async def read(self) -> bytes:
        """The whole body (unbounded: for callers that bound it otherwise)."""
        parts = []
        while chunk := await self.readany():
            parts.append(chunk)
        return b"".join(parts)

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        conn = self._conn
        if conn.reusable():
            conn.idle()
            self._release_to(conn)
        else:
            conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
