"""A fast OpenAI-compatible upstream for `scripts/bench_gateway.py`: a raw asyncio Protocol, on uvloop
when it is installed, so the gateways measured behind it are never waiting on their upstream.

    python scripts/_bench_upstream.py [--port P]

Answers every `POST` with a fixed chat completion (with usage), or, when the body asks for
`"stream": true`, with a fixed SSE stream (role, two content deltas, finish, a usage chunk, `[DONE]`)
sent chunked in one write; `GET /healthz` answers `ok`. HTTP/1.1 keep-alive, pipelining tolerated.
Nothing is parsed beyond the head's Content-Length and a byte search of the body for `"stream"`: a
gateway's upstream costs next to nothing here, which is the point. When it listens it prints one JSON
line on stdout, `{"origin": "http://127.0.0.1:P"}`, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from typing import Any, Final

COMPLETION: Final = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there, how are you?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 14, "completion_tokens": 7, "total_tokens": 21},
    },
    separators=(",", ":"),
).encode()


def _chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


EVENTS: Final = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Hello there,"}),
    _chunk({"content": " how are you?"}),
    _chunk({}, "stop"),
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [],
        "usage": {"prompt_tokens": 14, "completion_tokens": 7, "total_tokens": 21},
    },
]


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


STREAM_BODY: Final = (
    b"".join(_http_chunk(b"data: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n") for e in EVENTS)
    + _http_chunk(b"data: [DONE]\n\n")
    + b"0\r\n\r\n"
)

ANSWER: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(COMPLETION)
    + COMPLETION
)
STREAM_ANSWER: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n" + STREAM_BODY
)
HEALTH: Final = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
NOT_FOUND: Final = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
STREAM_FLAG: Final = re.compile(rb'"stream"\s*:\s*true')
LENGTH: Final = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class Responder(asyncio.Protocol):
    __slots__ = ("buf", "transport")

    def __init__(self) -> None:
        self.buf = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        out: list[bytes] = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[: end + 2]
            m = LENGTH.search(head)
            size = int(m.group(1)) if m else 0
            if len(buf) < end + 4 + size:
                break
            body = buf[end + 4 : end + 4 + size]
            buf = buf[end + 4 + size :]
            if head.startswith(b"POST "):
                out.append(STREAM_ANSWER if STREAM_FLAG.search(body) else ANSWER)
            elif head.startswith(b"GET /healthz"):
                out.append(HEALTH)
            else:
                out.append(NOT_FOUND)
        self.buf = buf
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Responder, "127.0.0.1", port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(json.dumps({"origin": f"http://127.0.0.1:{bound}"}), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def run(port: int) -> None:
    try:
        import uvloop
    except ImportError:  # asyncio's own loop: slower, still far from any gateway's cost
        asyncio.run(main(port))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(port))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A fast fixed-answer OpenAI-compatible upstream.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    run(parser.parse_args().port)
    sys.exit(0)
