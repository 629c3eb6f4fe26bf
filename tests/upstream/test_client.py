"""faregate.upstream's client against servers on 127.0.0.1: an aiohttp server, raw asyncio servers that
misbehave (close mid-body, odd chunk splits, close-delimited bodies, `Connection: close`, idle closes, a
huge head, silence), and a TLS server with a certificate made here. Connection reuse is counted. Every
test runs on asyncio's loop and on uvloop (conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from faregate.upstream.client import UpstreamClient
from faregate.upstream.connection import HIGH_WATER_BYTES
from faregate.upstream.errors import (
    BodyCutShort,
    ConnectFailed,
    ConnectTimeout,
    ProtocolError,
    ReadTimeout,
    ServerDisconnected,
)
from faregate.upstream.pool import Pool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
JSON = {"Content-Type": "application/json"}


class RawServer:
    """An asyncio server on 127.0.0.1 whose every connection runs `handler`; counts connections."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler, self.ssl_context = handler, ssl_context
        self.accepted = 0
        self.closed = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0, ssl=self.ssl_context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def url(self, path: str = "/x", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.closed.set()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return head + await reader.readexactly(length)


def serve_each(*answers: bytes) -> Handler:
    """Answer the requests of a connection with `answers` in turn (the last one repeats), keeping it open."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i in range(10_000):
            await read_request(reader)
            writer.write(answers[min(i, len(answers) - 1)])
            await writer.drain()

    return handler


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    c = UpstreamClient()
    yield c
    await c.close()


async def body_of(client: UpstreamClient, url: str, **kw: float) -> bytes:
    async with await client.request("POST", url, JSON, b"{}", **kw) as resp:
        return await resp.read()


# --- against aiohttp's server ---


@pytest.fixture
async def aiohttp_upstream() -> AsyncIterator[str]:
    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen = f"{request.method} {request.path_qs} {request.headers.get('Accept-Encoding')}"
        if request.path == "/gzip":
            resp = web.Response(body=b"compressed " * 1000, headers={"X-Seen": seen})
            resp.enable_compression(web.ContentCoding.gzip)
            return resp
        if request.path == "/stream":
            stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await stream.prepare(request)
            for i in range(5):
                await stream.write(b"data: %d\n\n" % i)
            await stream.write_eof()
            return stream
        return web.Response(body=body, status=201, headers={"X-Seen": seen, "X-Twice": "a"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_requests_reuse_one_kept_alive_connection(
    client: UpstreamClient, aiohttp_upstream: str
) -> None:
    for i in range(5):
        async with await client.request(
            "POST", aiohttp_upstream + f"/echo?i={i}", JSON, b'{"n": %d}' % i
        ) as r:
            assert r.status == 201 and await r.read() == b'{"n": %d}' % i
            assert r.headers.get("x-seen") == f"POST /echo?i={i} gzip, deflate"
            assert r.content_length == len(b'{"n": 0}')
    assert client.connections_opened == 1


async def test_concurrent_requests_open_connections_then_reuse_them(
    client: UpstreamClient, aiohttp_upstream: str
) -> None:
    for _ in range(3):
        bodies = await asyncio.gather(*(body_of(client, aiohttp_upstream + "/c") for _ in range(8)))
        assert bodies == [b"{}"] * 8
    assert client.connections_opened == 8


async def test_a_gzip_body_is_decompressed(client: UpstreamClient, aiohttp_upstream: str) -> None:
    async with await client.request("GET", aiohttp_upstream + "/gzip", {}) as r:
        assert r.headers.get("Content-Encoding") == "gzip"
        assert await r.read() == b"compressed " * 1000


async def test_a_streamed_body_arrives_in_pieces_to_its_end(
    client: UpstreamClient, aiohttp_upstream: str
) -> None:
    async with await client.request("POST", aiohttp_upstream + "/stream", JSON, b"{}") as r:
        assert r.content_length is None and r.headers.get("Transfer-Encoding") == "chunked"
        assert await r.read() == b"".join(b"data: %d\n\n" % i for i in range(5))
    assert await body_of(client, aiohttp_upstream + "/again") == b"{}"
    assert client.connections_opened == 1  # the chunked response was read to its end: reused


# --- against raw servers that misbehave ---


async def test_a_body_cut_short_raises_and_the_connection_is_not_reused(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")

    async with RawServer(handler) as server:
        resp = await client.request("POST", server.url(), JSON, b"{}")
        with pytest.raises(BodyCutShort):
            await resp.read()
        resp.release()
        with pytest.raises(BodyCutShort):
            await body_of(client, server.url())
    assert client.connections_opened == 2


async def test_a_close_before_any_response_is_a_server_disconnect(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with RawServer(handler) as server:
        with pytest.raises(ServerDisconnected):
            await client.request("POST", server.url(), JSON, b"{}")


async def test_chunks_split_at_every_byte_make_the_same_body(client: UpstreamClient) -> None:
    body = b'data: {"a": 1}\n\n' * 20
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    wire = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\nTrailer: x\r\n\r\n"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            head = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            for i, b in enumerate(head + wire):
                writer.write(bytes([b]))
                if i % 5 == 0:
                    await writer.drain()
                    await asyncio.sleep(0)

    async with RawServer(handler) as server:
        assert await body_of(client, server.url()) == body
        assert await body_of(client, server.url()) == body
    assert client.connections_opened == 1


async def test_a_close_delimited_body_ends_at_the_close_and_is_not_reused(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\npart one, ")
        await writer.drain()
        writer.write(b"part two")

    async with RawServer(handler) as server:
        assert await body_of(client, server.url()) == b"part one, part two"
        assert await body_of(client, server.url()) == b"part one, part two"
    assert client.connections_opened == 2


async def test_connection_close_is_honoured(client: UpstreamClient) -> None:
    async with RawServer(serve_each(ok(b"bye", b"Connection: close\r\n"))) as server:
        for _ in range(3):
            assert await body_of(client, server.url()) == b"bye"
    assert client.connections_opened == 3


async def test_an_idle_connection_the_server_closed_is_dropped_from_the_pool(client: UpstreamClient) -> None:
    """The server answers, then closes the kept-alive connection while it sits idle: the next request
    goes out on a new connection, not on the dead one."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(b"once"))
        await writer.drain()

    async with RawServer(handler) as server:
        assert await body_of(client, server.url()) == b"once"
        await server.closed.wait()
        for _ in range(100):  # the client's protocol sees the close (EOF) a loop turn or two later
            if not client._pool._idle.get(next(iter(client._pool._idle))):
                break
            await asyncio.sleep(0.01)
        assert await body_of(client, server.url()) == b"once"
    assert client.connections_opened == 2


async def test_a_response_not_read_to_its_end_closes_its_connection(client: UpstreamClient) -> None:
    async with RawServer(serve_each(ok(b"x" * (4 * HIGH_WATER_BYTES)))) as server:
        resp = await client.request("POST", server.url(), JSON, b"{}")
        assert await resp.readany()
        resp.release()
        await asyncio.wait_for(server.closed.wait(), 5)
        assert await body_of(client, server.url()) == b"x" * (4 * HIGH_WATER_BYTES)
    assert client.connections_opened == 2


async def test_reading_pauses_past_the_buffer_bound_and_resumes_as_it_is_read(client: UpstreamClient) -> None:
    size = 16 * HIGH_WATER_BYTES
    async with RawServer(serve_each(ok(b"y" * size))) as server:
        resp = await client.request("POST", server.url(), JSON, b"{}")
        conn = resp._conn
        for _ in range(500):  # until the transport has read past the bound and paused
            if conn._paused:
                break
            await asyncio.sleep(0.01)
        assert conn._paused and conn._buffered <= HIGH_WATER_BYTES + 256 * 1024
        got = 0
        while chunk := await resp.readany():
            got += len(chunk)
        assert got == size and not conn._paused
        resp.release()


async def test_a_huge_response_head_is_a_bounded_protocol_error(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(10_000):  # 10 MB of headers, never ending
            writer.write(b"X-Filler: " + b"f" * 1000 + b"\r\n")
            await writer.drain()

    async with RawServer(handler) as server:
        with pytest.raises(ProtocolError, match="head over"):
            await client.request("POST", server.url(), JSON, b"{}")


async def test_a_silent_server_is_a_read_timeout(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(3600)

    async with RawServer(handler) as server:
        resp = await client.request("POST", server.url(), JSON, b"{}", read_timeout_s=0.2)
        assert await resp.readany() == b"abc"
        with pytest.raises(ReadTimeout) as caught:
            await resp.readany()
        assert isinstance(caught.value, TimeoutError)
        resp.release()


async def test_a_refused_connection_names_the_os_error(client: UpstreamClient) -> None:
    async with RawServer(serve_each(ok(b""))) as server:
        url = server.url()
    with pytest.raises(ConnectFailed) as caught:
        await client.request("POST", url, JSON, b"{}")
    err = caught.value.os_error  # the loop's own error, as aiohttp passed it on (asyncio words it its way)
    assert err.errno == errno.ECONNREFUSED and err.strerror and err.strerror in str(caught.value)


async def test_a_connect_that_never_completes_is_a_connect_timeout(
    client: UpstreamClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()

    async def never(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(loop, "create_connection", never)
    with pytest.raises(ConnectTimeout) as caught:
        await client.request("POST", "http://127.0.0.1:9/x", JSON, b"{}", connect_timeout_s=0.05)
    assert isinstance(caught.value, TimeoutError)


async def test_dns_answers_are_cached(client: UpstreamClient, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    calls: list[str] = []
    real = loop.getaddrinfo

    async def counting(host: str, *args: object, **kwargs: object) -> object:
        calls.append(host)
        return await real("127.0.0.1", *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "getaddrinfo", counting)
    async with RawServer(serve_each(ok(b"dns", b"Connection: close\r\n"))) as server:
        for _ in range(3):
            assert await body_of(client, server.url(host="upstream.invalid")) == b"dns"
    assert calls == ["upstream.invalid"] and client.connections_opened == 3


async def test_a_cancelled_request_closes_its_connection(client: UpstreamClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read(1)  # until the client hangs up

    async with RawServer(handler) as server:
        task = asyncio.create_task(client.request("POST", server.url(), JSON, b"{}"))
        await asyncio.sleep(0.1)  # the request is out (or not: cancelling in the connect must close too)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.closed.wait(), 5)
    assert not any(client._pool._idle.values())


# --- TLS ---


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_https_sends_sni_offers_http11_and_verifies_the_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server_ctx.set_alpn_protocols(["h2", "http/1.1"])
    seen: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: seen.append(name)  # type: ignore[assignment,func-returns-value]
    alpn: list[str | None] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        alpn.append(writer.get_extra_info("ssl_object").selected_alpn_protocol())
        await serve_each(ok(b"secure", b"Content-Type: text/plain\r\n"))(reader, writer)

    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def loopback(host: str, *args: object, **kwargs: object) -> object:
        return await real("127.0.0.1", *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "getaddrinfo", loopback)  # "localhost" on 127.0.0.1 only
    trusting = ssl.create_default_context(cafile=str(cert))
    trusting.set_alpn_protocols(["http/1.1"])
    async with RawServer(handler, server_ctx) as server:
        url = server.url(host="localhost", scheme="https")
        client = UpstreamClient(Pool(trusting))
        try:
            assert await body_of(client, url) == b"secure"
            assert await body_of(client, url) == b"secure"
        finally:
            await client.close()
        assert client.connections_opened == 1 and seen == ["localhost"] and alpn == ["http/1.1"]

        default = UpstreamClient()  # the system's trust store does not know this certificate
        try:
            with pytest.raises(ConnectFailed) as caught:
                await body_of(default, url)
        finally:
            await default.close()
        assert isinstance(caught.value.os_error, ssl.SSLCertVerificationError)


async def test_gzip_from_a_raw_server_split_anywhere(client: UpstreamClient) -> None:
    body = b'{"choices": []}' * 300
    packed = gzip.compress(body)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed))
        for i in range(0, len(packed), 13):
            writer.write(packed[i : i + 13])
            await writer.drain()
        await reader.read(1)

    async with RawServer(handler) as server:
        assert await body_of(client, server.url()) == body
