"""A request aiohttp cannot parse (a NUL or a bare LF in a header) is answered 400 by aiohttp itself, and
logged as one line without a traceback: a client's malformed request is not a fault of the gateway."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp.test_utils import TestServer

from faregate.server.app import create_app
from faregate.server.options import ServeOptions
from faregate.server.protocol_log import ProtocolLogger
from tests.conftest import Demo

MALFORMED = [
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad: a\x00b\r\n\r\n",  # NUL in a header value
    b"GET /healthz HTTP/1.1\nHost: 127.0.0.1\nX-Bad: a\r\n\r\n",  # bare LF line ends
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Name: a\r\n\r\n",  # a space in a header name
]


async def raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


@pytest.mark.parametrize("request_bytes", MALFORMED, ids=["nul", "bare-lf", "space-in-name"])
async def test_a_malformed_request_is_refused_without_a_traceback(
    demo: Demo, caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    app = create_app(demo.runtime, ServeOptions(watch_interval_s=0))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(logger=ProtocolLogger())  # as `faregate serve` runs aiohttp
    try:
        with caplog.at_level(logging.INFO):
            answer = await raw(server.port or 0, request_bytes)
    finally:
        await server.close()
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer[:200]
    logged = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert logged and all(r.exc_info is None and r.levelno == logging.INFO for r in logged), [
        (r.levelname, r.getMessage()) for r in logged
    ]
    assert "malformed request" in logged[0].getMessage()


def test_other_errors_are_logged_as_aiohttp_logs_them(caplog: pytest.LogCaptureFixture) -> None:
    log = ProtocolLogger()
    try:
        raise ValueError("a bug")
    except ValueError:
        log.exception("Error handling request from %s", "127.0.0.1")
    (record,) = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert record.levelno == logging.ERROR and record.exc_info is not None
