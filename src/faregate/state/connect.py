"""One Redis client per process for the shared state, from `state: redis://host:port/db?prefix=fg:`.

`prefix` (default `fg:`) namespaces every key, so several fleets (or test runs) can share one Redis.
Short timeouts: a request never waits long on a Redis that does not answer (status.py takes over).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis

from faregate.values import frozen

# Long enough for a loaded machine opening many connections at once (a burst of concurrent admissions),
# short enough that a Redis that does not answer costs one request this much before status.py takes over.
TIMEOUT_S = 2.0
DEFAULT_PREFIX = "fg:"


@frozen
class RedisTarget:
    url: str  # without faregate's own parameters
    prefix: str

    @property
    def shown(self) -> str:
        """The URL without a password, for logs."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def parse_target(url: str) -> RedisTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"state: {url!r} is not a redis:// URL")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), DEFAULT_PREFIX)
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return RedisTarget(urlunsplit((parts.scheme, parts.netloc, parts.path, rest, "")), prefix)


def connect(target: RedisTarget) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        target.url,
        socket_timeout=TIMEOUT_S,
        socket_connect_timeout=TIMEOUT_S,
        decode_responses=True,
        health_check_interval=10,
    )
