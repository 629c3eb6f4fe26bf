"""`UpstreamClient`: one HTTP/1.1 request to an upstream, on a pooled connection.

What faregate's upstream calls need and nothing else: no cookies, no proxies, no redirects (a 3xx is the
upstream's answer), no HTTP/2. Made and closed with the app (`server/app.py`), passed to the plan walk.
"""

from __future__ import annotations

from collections.abc import Mapping

from faregate.upstream.connection import Response
from faregate.upstream.errors import ClientError
from faregate.upstream.http1 import render_request, split_url
from faregate.upstream.pool import Pool


class UpstreamClient:
    """Requests over `pool` (by default: the system's trust store, DNS kept 5 minutes, 15 s keep-alive)."""

    def __init__(self, pool: Pool | None = None) -> None:
        self._pool = pool or Pool()
        self._closed = False

    @property
    def connections_opened(self) -> int:
        return self._pool.opened

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        *,
        connect_timeout_s: float | None = None,
        read_timeout_s: float | None = None,
    ) -> Response:
        """Send the request and return once the response head has arrived; read its body from the
        `Response`, then release it (or use it as an async context manager). `read_timeout_s` bounds
        each wait for bytes (the head's included), `connect_timeout_s` the connect. Raises a
        `faregate.upstream.errors.ClientError`."""
        if self._closed:
            raise ClientError("the upstream client is closed")
        origin, target = split_url(url)
        data = render_request(method, origin, target, headers, body)
        pool = self._pool
        conn = pool.take(origin) or await pool.connect(origin, connect_timeout_s)
        try:
            conn.send(data, no_body=method == "HEAD")
            head = await conn.head(read_timeout_s)
        except BaseException:  # an error, a timeout, a cancellation: the connection is in an unknown state
            conn.close()
            raise
        return Response(conn, head, read_timeout_s, pool.put)

    async def close(self) -> None:
        """Close the idle connections; later requests are refused."""
        self._closed = True
        self._pool.close()
