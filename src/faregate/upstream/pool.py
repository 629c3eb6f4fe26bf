"""Connections to upstreams: DNS with a cache, connecting (TCP, TLS with SNI and ALPN `http/1.1`) within a
timeout, and a keep-alive pool per origin.

Idle connections are reused newest first; one the server closed is forgotten as soon as its protocol
sees the close; one idle for longer than `keepalive_s` is closed by a sweep (one timer for the pool).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Final

from faregate.upstream.connection import Connection
from faregate.upstream.errors import ConnectFailed, ConnectTimeout
from faregate.upstream.http1 import Origin

DNS_TTL_S: Final = 300.0  # as aiohttp's ttl_dns_cache=300, which faregate's session used
KEEPALIVE_S: Final = 15.0  # aiohttp's keepalive_timeout default
MAX_IDLE_PER_ORIGIN: Final = 256

AddrInfo = tuple[Any, ...]  # (family, type, proto, canonname, sockaddr), as getaddrinfo gives them


def tls_context() -> ssl.SSLContext:
    """The system's trust store and hostname checks; HTTP/1.1 is the only protocol offered."""
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


@dataclass(slots=True)
class DnsCache:
    """`loop.getaddrinfo` answers, kept `ttl_s` per (host, port)."""

    ttl_s: float = DNS_TTL_S
    _entries: dict[tuple[str, int], tuple[float, list[AddrInfo]]] = field(default_factory=dict)

    async def resolve(self, host: str, port: int) -> list[AddrInfo]:
        loop = asyncio.get_running_loop()
        now = loop.time()
        hit = self._entries.get((host, port))
        if hit is not None and hit[0] > now:
            return hit[1]
        infos: list[AddrInfo] = list(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        if not infos:
            raise socket.gaierror(socket.EAI_NONAME, "no address")
        self._entries[(host, port)] = (now + self.ttl_s, infos)
        return infos


class Pool:
    """Idle keep-alive connections per origin, and new ones when none is idle."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        *,
        dns_ttl_s: float = DNS_TTL_S,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        self._ssl = ssl_context
        self._dns = DnsCache(dns_ttl_s)
        self._keepalive_s = keepalive_s
        self._idle: dict[Origin, list[Connection]] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False
        self.opened = 0  # connections made so far (a test counts reuse with it)

    def take(self, origin: Origin) -> Connection | None:
        """An idle connection to `origin`, newest first, or None."""
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                return conn
        return None

    def put(self, conn: Connection) -> None:
        """A connection whose response was read to its end, kept alive for the next request."""
        if self._closed:
            conn.close()
            return
        loop = asyncio.get_running_loop()
        idle = self._idle.setdefault(conn.origin, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            idle.pop(0).close()
        conn.idle_since = loop.time()
        idle.append(conn)
        if self._sweep is None:
            self._sweep = loop.call_later(self._keepalive_s, self._expire)

    def forget(self, conn: Connection) -> None:
        """An idle connection the server closed."""
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        self._sweep = None
        oldest = loop.time() - self._keepalive_s
        for idle in self._idle.values():
            while idle and idle[0].idle_since <= oldest:
                idle.pop(0).close()
        if any(self._idle.values()):
            self._sweep = loop.call_later(self._keepalive_s, self._expire)

    async def connect(self, origin: Origin, timeout_s: float | None) -> Connection:
        """A new connection, trying each address DNS gave in turn, all within `timeout_s`."""
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        try:
            async with asyncio.timeout(timeout_s):
                try:
                    infos = await self._dns.resolve(origin.host, origin.port)
                except OSError as e:
                    raise ConnectFailed(str(origin), e) from None
                for family, _, proto, _, address in infos:
                    try:
                        _, conn = await loop.create_connection(
                            lambda: Connection(origin, self.forget),
                            address[0],
                            address[1],
                            family=family,
                            proto=proto,
                            ssl=self._tls() if origin.tls else None,
                            server_hostname=origin.host if origin.tls else None,
                        )
                    except OSError as e:
                        last = e
                        continue
                    self.opened += 1
                    return conn
        except TimeoutError:
            raise ConnectTimeout(f"no connection to {origin} within {timeout_s:g}s") from None
        raise ConnectFailed(str(origin), last or OSError("no address to connect to"))

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = tls_context()  # made on first use: loading the trust store is not free
        return self._ssl

    def close(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
