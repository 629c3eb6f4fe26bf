"""A misbehaving OpenAI-compatible upstream on 127.0.0.1, written on raw asyncio streams so it can do
what no well-behaved HTTP server would: hang, drip, reset, cut a body short, send a 50 MB event.

`FakeUpstream.mode` picks the behaviour of the next requests; `open` counts connections still open
(so a test can check that the gateway hung up on it) and `served` the requests it read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any

CHUNK = 1 << 16


def _completion() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1,
            "model": "fake",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }
    ).encode()


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


FIRST_EVENT = _chunk({"role": "assistant", "content": "hel"})


@dataclass
class FakeUpstream:
    mode: str = "ok"
    retry_after: str | None = None
    big_bytes: int = 50 * 1024 * 1024
    served: int = 0
    open: int = 0  # connections open now
    server: asyncio.Server | None = None
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    async def start(self) -> FakeUpstream:
        """Serves from a thread with its own event loop: its work never delays the gateway's loop."""
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self.server = loop.run_until_complete(asyncio.start_server(self._conn, "127.0.0.1", 0))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="fake-upstream")
        self._thread.start()
        await asyncio.to_thread(ready.wait, 5)
        return self

    async def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            server = self.server
            assert server is not None
            self._loop.call_soon_threadsafe(server.close)
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join, 5)

    async def wait_closed(self, timeout_s: float) -> None:
        """Until no connection is open (the gateway hung up), or `TimeoutError`."""
        async with asyncio.timeout(timeout_s):
            while self.open:  # noqa: ASYNC110 (the counter lives on another thread's loop)
                await asyncio.sleep(0.005)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.served += 1
                stream = b'"stream":true' in body.replace(b" ", b"")
                # Answer while watching for the gateway hanging up (the gateway never pipelines).
                answer = asyncio.ensure_future(self._answer(writer, stream))
                hangup = asyncio.ensure_future(reader.read(1))
                await asyncio.wait({answer, hangup}, return_when=asyncio.FIRST_COMPLETED)
                hung_up = not answer.done()
                for task in (answer, hangup):
                    task.cancel()
                await asyncio.gather(answer, hangup, return_exceptions=True)
                if hung_up:
                    break
                if answer.cancelled() or answer.exception() is not None or not answer.result():
                    break
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            asyncio.LimitOverrunError,
            asyncio.CancelledError,
        ):
            pass
        finally:
            self.open -= 1
            with contextlib.suppress(Exception):
                writer.close()

    async def _answer(self, w: asyncio.StreamWriter, stream: bool) -> bool:
        """Answer one request; False when the connection must not be reused."""
        mode = self.mode
        ctype = b"text/event-stream" if stream else b"application/json"
        if mode.startswith("status:"):
            status = int(mode.split(":")[1])
            body = json.dumps(
                {"error": {"message": f"fake failure {status}", "type": "server_error"}}
            ).encode()
            extra = f"Retry-After: {self.retry_after}\r\n".encode() if self.retry_after else b""
            w.write(
                b"HTTP/1.1 %d Fail\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
                % (status, len(body), extra, body)
            )
            await w.drain()
            return True
        if mode == "hang_headers":
            await asyncio.sleep(3600)
        if mode == "ok":
            if stream:
                body = FIRST_EVENT + _chunk({"content": "lo"}, "stop") + b"data: [DONE]\n\n"
            else:
                body = _completion()
            w.write(_head(ctype, len(body)) + body)
            await w.drain()
            return True
        if mode == "stall_headers":  # headers, then nothing at all
            w.write(_head(ctype, None))
            await w.drain()
            await asyncio.sleep(3600)
        if mode == "drip":  # headers (and a first event when streaming), then one byte a second
            w.write(_head(ctype, None))
            if stream:
                w.write(_chunked(FIRST_EVENT))
            await w.drain()
            body = _chunk({"content": "x" * 200}) if stream else _completion()
            for i in range(len(body)):
                w.write(_chunked(body[i : i + 1]))
                await w.drain()
                await asyncio.sleep(1)
        if mode == "reset_mid_body":  # part of a declared body, then a TCP reset
            body = (FIRST_EVENT * 4) if stream else _completion()
            w.write(_head(ctype, len(body) * 10) + body)
            await w.drain()
            _reset(w)
            return False
        if mode == "close_mid_stream":  # a clean close: chunked encoding ended properly, no [DONE]
            body = FIRST_EVENT + _chunk({"content": "lo"}) if stream else _completion()[:40]
            if stream:
                w.write(_head(ctype, None) + _chunked(body) + b"0\r\n\r\n")
            else:
                w.write(_head(ctype, len(body)) + body)
            await w.drain()
            return False
        if mode == "malformed":
            if not stream:
                w.write(_head(ctype, 9) + b"{not json")
                await w.drain()
                return True
            w.write(_head(ctype, None) + _chunked(FIRST_EVENT))
            await w.drain()
            await asyncio.sleep(0.2)  # the first event reaches the client before the bad one arrives
            w.write(_chunked(b"data: {not json\n\n") + b"0\r\n\r\n")
            await w.drain()
            return True
        if mode in ("big_body", "big_event"):  # 50 MB chunked (no Content-Length to refuse up front);
            w.write(_head(ctype, None))  # streaming: one 50 MB event, after a first event or as the first
            piece = b"x" * CHUNK
            sent = 0
            if stream:
                w.write(_chunked((FIRST_EVENT if mode == "big_body" else b"") + b"data: "))
            while sent < self.big_bytes:
                w.write(_chunked(piece))
                sent += len(piece)
                await w.drain()
            w.write(_chunked(b"\n\n") + b"0\r\n\r\n")
            await w.drain()
            return False
        raise AssertionError(f"unknown mode {mode}")


def _head(ctype: bytes, length: int | None) -> bytes:
    framing = b"Content-Length: %d" % length if length is not None else b"Transfer-Encoding: chunked"
    return b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\n%s\r\n\r\n" % (ctype, framing)


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _reset(w: asyncio.StreamWriter) -> None:
    sock = w.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.transport.abort()
