"""Walk a plan: call each channel in order until one answers (DESIGN "Choosing a channel", last paragraph).

Connect errors, timeouts, 408/429/5xx (and the upstream's 401/403/404, which are the channel's fault)
move on to the next channel and cool the failed one down; a 4xx caused by the request itself is
returned as is. A stream falls back only before its first event reached the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp

from faregate.accounting.record import Attempt
from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Finish,
    Start,
    StreamEvent,
)
from faregate.errors import AllChannelsFailed, UpstreamError, UpstreamRequestError
from faregate.providers.base import Adapter, StreamDecoder, Target, UpstreamCall
from faregate.providers.registry import adapter_for
from faregate.providers.sse import SseDecoder
from faregate.routing.health import Health
from faregate.routing.plan import Plan
from faregate.routing.table import Channel

T = TypeVar("T")


@dataclass(slots=True)
class Walk:
    """What one request's plan walk has done so far (shared with the handler for the record)."""

    plan: Plan
    attempts: list[Attempt] = field(default_factory=list)
    failures: list[tuple[str, UpstreamError]] = field(default_factory=list)
    dropped: tuple[str, ...] = ()
    local_stops: tuple[str, ...] = ()  # stop sequences the channel's call left to faregate

    def fail(self, ch: Channel, err: UpstreamError, started: float, health: Health) -> None:
        latency = (time.perf_counter() - started) * 1000
        self.attempts.append(
            Attempt(ch.id, ch.provider, err.status, err.kind, round(latency, 2), err.message)
        )
        self.failures.append((ch.id, err))
        if not err.retryable:
            raise UpstreamRequestError(err, provider=ch.provider)
        health.failed(ch.id, time.monotonic())

    def ok(self, ch: Channel, status: int, started: float, health: Health) -> float:
        latency = (time.perf_counter() - started) * 1000
        self.attempts.append(Attempt(ch.id, ch.provider, status, "ok", round(latency, 2)))
        health.succeeded(ch.id, latency)
        return latency

    def exhausted(self) -> AllChannelsFailed:
        return AllChannelsFailed(self.failures, skipped=len(self.plan.skipped))


def target(ch: Channel) -> Target:
    return Target(ch.base_url, ch.upstream_id, ch.api_key, ch.max_output)


def _transport_error(e: BaseException) -> UpstreamError:
    if isinstance(e, asyncio.TimeoutError):
        return UpstreamError("timeout", "timed out")
    if isinstance(e, aiohttp.ClientConnectorError):
        return UpstreamError(
            "connect", f"cannot connect ({e.os_error.strerror or type(e.os_error).__name__})"
        )
    return UpstreamError("connect", f"connection failed ({type(e).__name__})")


async def _send(
    session: aiohttp.ClientSession, call: UpstreamCall, timeouts: aiohttp.ClientTimeout
) -> aiohttp.ClientResponse:
    return await session.request(
        call.method, call.url, headers=call.headers, data=call.body, timeout=timeouts
    )


async def call_once(
    session: aiohttp.ClientSession,
    walk: Walk,
    timeouts: aiohttp.ClientTimeout,
    health: Health,
    build: Callable[[Adapter, Target], UpstreamCall],
    parse: Callable[[Adapter, bytes], T],
) -> tuple[Channel, T]:
    """The plan walk for a non-streamed call: `build` the upstream request, `parse` a 2xx answer."""
    for entry in walk.plan.entries:
        ch = entry.channel
        adapter = adapter_for(ch.api)
        call = build(adapter, target(ch))
        walk.dropped, walk.local_stops = call.dropped, call.local_stops
        started = time.perf_counter()
        try:
            async with await _send(session, call, timeouts) as resp:
                body = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as e:
            walk.fail(ch, _transport_error(e), started, health)
            continue
        if status >= 300:
            walk.fail(ch, adapter.classify_error(status, body), started, health)
            continue
        try:
            parsed = parse(adapter, body)
        except (ValueError, KeyError, TypeError) as e:
            walk.fail(ch, UpstreamError("protocol", f"unreadable response: {e}", status), started, health)
            continue
        walk.ok(ch, status, started, health)
        return ch, parsed
    raise walk.exhausted()


async def call_chat(
    session: aiohttp.ClientSession,
    walk: Walk,
    req: ChatRequest,
    timeouts: aiohttp.ClientTimeout,
    health: Health,
) -> tuple[Channel, ChatResponse]:
    return await call_once(
        session,
        walk,
        timeouts,
        health,
        lambda a, t: a.chat_request(req, t),
        lambda a, b: a.parse_chat_response(b),
    )


async def call_embeddings(
    session: aiohttp.ClientSession,
    walk: Walk,
    req: EmbeddingRequest,
    timeouts: aiohttp.ClientTimeout,
    health: Health,
) -> tuple[Channel, EmbeddingResponse]:
    return await call_once(
        session,
        walk,
        timeouts,
        health,
        lambda a, t: a.embeddings_request(req, t),
        lambda a, b: a.parse_embeddings_response(b),
    )


@dataclass(slots=True)
class OpenStream:
    """An upstream stream that has produced its first events and not yet reached the client."""

    channel: Channel
    response: aiohttp.ClientResponse
    sse: SseDecoder
    decoder: StreamDecoder
    first: list[StreamEvent]
    ttft_ms: float

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        """The first events, then the rest as they arrive. Ends after `Finish`; raises on a drop."""
        try:
            for ev in self.first:
                yield ev
            if any(_is_finish(ev) for ev in self.first):
                return
            while True:
                chunk = await self.response.content.readany()
                if not chunk:
                    for ev in [
                        *(e for s in self.sse.close() for e in self.decoder.feed(s)),
                        *self.decoder.close(),
                    ]:
                        yield ev
                    return
                for s in self.sse.feed(chunk):
                    for ev in self.decoder.feed(s):
                        yield ev
                        if _is_finish(ev):
                            return
        finally:
            self.response.release()


def _is_finish(ev: StreamEvent) -> bool:
    return isinstance(ev, Finish)


async def open_stream(
    session: aiohttp.ClientSession,
    walk: Walk,
    req: ChatRequest,
    timeouts: aiohttp.ClientTimeout,
    health: Health,
) -> OpenStream:
    """Try channels in order until one has sent its first event; nothing has reached the client yet."""
    for entry in walk.plan.entries:
        ch = entry.channel
        adapter: Adapter = adapter_for(ch.api)
        call = adapter.chat_request(req, target(ch))
        walk.dropped, walk.local_stops = call.dropped, call.local_stops
        started = time.perf_counter()
        try:
            resp = await _send(session, call, timeouts)
        except (TimeoutError, aiohttp.ClientError) as e:
            walk.fail(ch, _transport_error(e), started, health)
            continue
        if resp.status >= 300:
            try:
                body = await resp.read()
            except (TimeoutError, aiohttp.ClientError):
                body = b""
            resp.release()
            walk.fail(ch, adapter.classify_error(resp.status, body), started, health)
            continue
        sse, decoder = SseDecoder(), adapter.stream_decoder()
        try:
            first = await _first_events(resp, sse, decoder)
        except (TimeoutError, aiohttp.ClientError) as e:
            resp.release()
            walk.fail(ch, _transport_error(e), started, health)
            continue
        except Exception as e:  # a decoder's StreamError or malformed data: the channel's fault
            resp.release()
            err = getattr(e, "error", None)
            walk.fail(
                ch,
                err if isinstance(err, UpstreamError) else UpstreamError("protocol", str(e)[:200]),
                started,
                health,
            )
            continue
        ttft = walk.ok(ch, resp.status, started, health)
        return OpenStream(ch, resp, sse, decoder, first, ttft)
    raise walk.exhausted()


async def _first_events(
    resp: aiohttp.ClientResponse, sse: SseDecoder, decoder: StreamDecoder
) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    while not events:
        chunk = await resp.content.readany()
        if not chunk:
            for s in sse.close():
                events += decoder.feed(s)
            events += decoder.close()
            if not any(isinstance(e, Start) for e in events):
                raise ValueError("stream ended before it began")
            return events
        for s in sse.feed(chunk):
            events += decoder.feed(s)
    return events
