"""Walk a plan: call each channel in order until one answers (DESIGN "Choosing a channel", last paragraph).

Connect errors, timeouts, 408/429/5xx (and the upstream's 401/403/404, which are the channel's fault)
move on to the next channel and cool the failed one down (for the upstream's `Retry-After` when it
sends one, up to `server.max_retry_after_s`); a 4xx caused by the request itself is returned as is. A
stream falls back only before its first event reached the client; a stream that breaks after that
(a drop, a clean close before its end, malformed data, a stall) cools its channel down too.

Every wait is bounded (`Bounds`, README "Limits and timeouts"): time to the first byte, total time of
a non-streamed attempt, the idle gap and total time of a stream, the whole walk, and the size of a
body or of one SSE event. An upstream that drips a byte a second cannot hold a request open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field, replace
from typing import Final, Generic, TypeVar

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
from faregate.errors import AllChannelsFailed, FaregateError, UpstreamError, UpstreamRequestError
from faregate.pipeline.bounds import Bounds
from faregate.providers.base import Adapter, Inbound, RelayedAnswer, StreamDecoder, Target, UpstreamCall
from faregate.providers.errors import MALFORMED, decoder_error
from faregate.providers.registry import SAME_FORMAT, adapter_for
from faregate.providers.sse import SseDecoder
from faregate.providers.wire import retry_after_seconds
from faregate.routing.health import Health
from faregate.routing.plan import Plan
from faregate.routing.table import Channel
from faregate.secrets import Scrubber
from faregate.upstream.client import UpstreamClient
from faregate.upstream.connection import Response
from faregate.upstream.errors import BadRequest, BodyCutShort, ClientError, ConnectFailed, ProtocolError
from faregate.values import frozen

T = TypeVar("T")
ERROR_BODY_BYTES = 64 * 1024  # of an upstream's error answer only the envelope's message is kept


@frozen
class Trace:
    """What a plan walk did, for the record and `x-faregate`: every attempt, the parameters the answering
    channel's format dropped, what the middle-out transform did."""

    attempts: tuple[Attempt, ...] = ()
    dropped: tuple[str, ...] = ()
    transforms: tuple[dict[str, object], ...] = ()


NO_TRACE: Final = Trace()


@frozen
class Executed(Generic[T]):
    """A plan walk that got an answer: the channel, its parsed answer and the walk's trace."""

    channel: Channel
    answer: T
    trace: Trace
    local_stops: tuple[str, ...] = ()  # stop sequences the channel's call left to faregate


class WalkFailed(Exception):
    """No channel answered (`AllChannelsFailed`), or one blamed the request (`UpstreamRequestError`): the
    error for the client, and the trace of the attempts for the record."""

    def __init__(self, error: FaregateError, trace: Trace) -> None:
        super().__init__(error.message)
        self.error, self.trace = error, trace


class StreamFailed(Exception):
    """A started stream broke: its channel has been marked failed; `error` says how, `trace` is the walk's
    with the answering attempt amended."""

    def __init__(self, error: UpstreamError, trace: Trace) -> None:
        super().__init__(error.message)
        self.error, self.trace = error, trace


class BodyTooLarge(Exception):
    pass


Fit = Callable[[ChatRequest, Channel], tuple[ChatRequest, dict[str, object] | None]]


@dataclass(slots=True)
class Walk:
    """What one plan walk has done so far: kept inside this module; callers get its `Trace`."""

    plan: Plan
    # Per-channel rewriting of the request (the middle-out transform), and what it did (for x-faregate).
    fit: Fit | None = None
    attempts: list[Attempt] = field(default_factory=list)
    failures: list[tuple[str, UpstreamError]] = field(default_factory=list)
    dropped: tuple[str, ...] = ()
    local_stops: tuple[str, ...] = ()  # stop sequences the channel's call left to faregate
    deadline: float | None = None  # event-loop time by which an answer must have arrived
    out_of_time: bool = False
    _scrubber: Scrubber | None = None

    def scrubbed(self, err: UpstreamError) -> UpstreamError:
        """The upstream's words without the keys this plan sends (an upstream can echo only those),
        whatever their shape, nor any known key shape."""
        if self._scrubber is None:
            self._scrubber = Scrubber(e.channel.api_key for e in self.plan.entries)
        scrub = self._scrubber.scrub
        message = scrub(err.message)
        kind = scrub(err.error_type) if err.error_type else None
        return (
            err
            if (message, kind) == (err.message, err.error_type)
            else replace(err, message=message, error_type=kind)
        )

    transforms: list[dict[str, object]] = field(default_factory=list)

    def start(self, bounds: Bounds) -> float:
        """The walk's deadline, from its start."""
        self.deadline = asyncio.get_running_loop().time() + bounds.request_s
        return self.deadline

    def trace(self) -> Trace:
        return Trace(tuple(self.attempts), self.dropped, tuple(self.transforms))

    def failed(self, error: FaregateError) -> WalkFailed:
        return WalkFailed(error, self.trace())

    def request_for(self, req: ChatRequest, ch: Channel) -> ChatRequest:
        if self.fit is None:
            return req
        fitted, note = self.fit(req, ch)
        if note is not None:
            self.transforms.append(note)
        return fitted

    def fail(self, ch: Channel, err: UpstreamError, started: float, health: Health) -> None:
        err = self.scrubbed(err)
        latency = (time.perf_counter() - started) * 1000
        self.attempts.append(
            Attempt(ch.id, ch.provider, err.status, err.kind, round(latency, 2), err.message)
        )
        self.failures.append((ch.id, err))
        if not err.retryable:
            raise UpstreamRequestError(err, provider=ch.provider)
        health.failed(ch.id, time.monotonic(), err.retry_after_s)

    def ok(self, ch: Channel, status: int, started: float, health: Health) -> float:
        latency = (time.perf_counter() - started) * 1000
        self.attempts.append(Attempt(ch.id, ch.provider, status, "ok", round(latency, 2)))
        health.succeeded(ch.id, latency)
        return latency

    def broke(self, ch: Channel, err: UpstreamError, health: Health) -> UpstreamError:
        """The answer that started fine failed midway: the trace says so and the channel cools down."""
        err = self.scrubbed(err)
        for i in range(len(self.attempts) - 1, -1, -1):
            a = self.attempts[i]
            if a.channel == ch.id and a.outcome == "ok":
                self.attempts[i] = replace(a, outcome=f"dropped ({err.kind})", error=err.message)
                break
        health.failed(ch.id, time.monotonic(), err.retry_after_s)
        return err

    def exhausted(self) -> AllChannelsFailed:
        err = AllChannelsFailed(self.failures, skipped=len(self.plan.skipped))
        if self.out_of_time:
            err.status = 504
            err.message = "the request deadline passed: " + err.message
        return err


def target(ch: Channel) -> Target:
    return Target(ch.base_url, ch.upstream_id, ch.api_key, ch.max_output, ch.params)


def _transport_error(e: BaseException, waited_for: str = "") -> UpstreamError:
    if isinstance(e, TimeoutError):
        return UpstreamError("timeout", f"timed out{waited_for}")
    if isinstance(e, BodyTooLarge):
        return UpstreamError("protocol", str(e))
    if isinstance(e, ConnectFailed):
        return UpstreamError(
            "connect", f"cannot connect ({e.os_error.strerror or type(e.os_error).__name__})"
        )
    if isinstance(e, BodyCutShort):
        return UpstreamError("protocol", "the response body was cut short")
    if isinstance(e, ProtocolError):
        return UpstreamError("protocol", f"malformed response ({e})")
    if isinstance(e, BadRequest):  # e.g. a key with a trailing newline: named by header, never by value
        return UpstreamError("connect", f"request not sent ({e})")
    return UpstreamError("connect", f"connection failed ({type(e).__name__})")


async def _send(client: UpstreamClient, call: UpstreamCall, bounds: Bounds) -> Response:
    return await client.request(
        call.method,
        call.url,
        call.headers,
        call.body,
        connect_timeout_s=bounds.connect_s,
        read_timeout_s=bounds.read_s,
    )


async def read_bounded(resp: Response, limit: int, *, truncate: bool = False) -> bytes:
    """The body, at most `limit` bytes (decompressed). Larger: `BodyTooLarge`, or cut when `truncate`."""
    declared = resp.content_length
    if declared is not None and declared > limit and not truncate:
        raise BodyTooLarge(f"response body of {declared} bytes is over the limit of {limit}")
    buf = bytearray()
    while True:
        chunk = await resp.readany()
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > limit:
            if truncate:
                return bytes(buf[:limit])
            raise BodyTooLarge(f"response body is over the limit of {limit} bytes")


def _status_error(adapter: Adapter, resp: Response, body: bytes) -> UpstreamError:
    err = adapter.classify_error(resp.status, body)
    ra = retry_after_seconds(resp.headers.get("Retry-After"), time.time())
    return replace(err, retry_after_s=ra) if ra is not None else err


def _late(loop: asyncio.AbstractEventLoop, started: float, limit_s: float, walk: Walk) -> tuple[float, str]:
    """The moment an attempt's phase ends: its own limit or the walk's deadline, whichever comes first."""
    own = started + limit_s
    deadline = walk.deadline if walk.deadline is not None else own
    if deadline < own:
        return deadline, " (the request deadline passed)"
    return own, f" (no answer within {limit_s:g}s)"


async def call_once(
    client: UpstreamClient,
    walk: Walk,
    bounds: Bounds,
    health: Health,
    build: Callable[[Adapter, Channel], UpstreamCall],
    parse: Callable[[Adapter, bytes], T],
) -> Executed[T]:
    """The plan walk for a non-streamed call: `build` the upstream request, `parse` a 2xx answer. Raises
    `WalkFailed` when no channel answers."""
    try:
        ch, parsed = await _walk_once(client, walk, bounds, health, build, parse)
    except FaregateError as e:  # every channel failed, or one blamed the request
        raise walk.failed(e) from None
    return Executed(ch, parsed, walk.trace(), walk.local_stops)


async def _walk_once(
    client: UpstreamClient,
    walk: Walk,
    bounds: Bounds,
    health: Health,
    build: Callable[[Adapter, Channel], UpstreamCall],
    parse: Callable[[Adapter, bytes], T],
) -> tuple[Channel, T]:
    loop = asyncio.get_running_loop()
    deadline = walk.start(bounds)
    for entry in walk.plan.entries:
        if loop.time() >= deadline:
            walk.out_of_time = True
            break
        ch = entry.channel
        adapter = adapter_for(ch.api)
        call = build(adapter, ch)
        walk.dropped, walk.local_stops = call.dropped, call.local_stops
        started, t0 = time.perf_counter(), loop.time()
        when, why = _late(loop, t0, bounds.first_byte_s, walk)
        try:
            async with asyncio.timeout_at(when) as cm:
                async with await _send(client, call, bounds) as resp:
                    when, why = _late(loop, t0, bounds.total_s, walk)
                    cm.reschedule(when)
                    status = resp.status
                    if status >= 300:
                        body = await read_bounded(resp, ERROR_BODY_BYTES, truncate=True)
                        err = _status_error(adapter, resp, body)
                    else:
                        body = await read_bounded(resp, bounds.max_response_bytes)
        except (TimeoutError, ClientError, BodyTooLarge) as e:
            walk.out_of_time = loop.time() >= deadline
            walk.fail(ch, _transport_error(e, why), started, health)
            continue
        if status >= 300:
            walk.fail(ch, err, started, health)
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
    client: UpstreamClient,
    plan: Plan,
    req: ChatRequest,
    bounds: Bounds,
    health: Health,
    fit: Fit | None = None,
    inbound: Inbound | None = None,
) -> Executed[ChatResponse | RelayedAnswer]:
    """The plan walk for a chat answer: canonical, or relayed when `inbound` (the client's format) has a
    same-format path to the channel's `api:` and faregate applies no stop sequences of its own to it."""
    walk = Walk(plan, fit)

    def parse(a: Adapter, body: bytes) -> ChatResponse | RelayedAnswer:
        relay = SAME_FORMAT.get((inbound, a.api)) if inbound is not None and not walk.local_stops else None
        return (relay(body) if relay is not None else None) or a.parse_chat_response(body)

    return await call_once(
        client,
        walk,
        bounds,
        health,
        lambda a, ch: a.chat_request(walk.request_for(req, ch), target(ch)),
        parse,
    )


async def call_embeddings(
    client: UpstreamClient,
    plan: Plan,
    req: EmbeddingRequest,
    bounds: Bounds,
    health: Health,
) -> Executed[EmbeddingResponse]:
    return await call_once(
        client,
        Walk(plan),
        bounds,
        health,
        lambda a, ch: a.embeddings_request(req, target(ch)),
        lambda a, b: a.parse_embeddings_response(b),
    )


@dataclass(slots=True)
class OpenStream:
    """An upstream stream that has produced its first events and not yet reached the client. `trace` is
    the walk's so far; a stream that breaks raises `StreamFailed` with the trace amended."""

    channel: Channel
    response: Response
    sse: SseDecoder
    decoder: StreamDecoder
    first: list[StreamEvent]
    ttft_ms: float
    walk: Walk
    health: Health
    bounds: Bounds
    ends_at: float  # event-loop time: the stream's total deadline

    @property
    def trace(self) -> Trace:
        return self.walk.trace()

    @property
    def local_stops(self) -> tuple[str, ...]:
        return self.walk.local_stops

    async def batches(self) -> AsyncGenerator[list[StreamEvent], None]:
        """The first events, then the rest as they arrive, a list per upstream read (the events it
        completed: the client gets them in one write); the last list ends with `Finish`. A drop, a stall,
        an oversized or malformed event, or an end before the answer's end raises `StreamFailed` (the
        channel marked failed); the upstream connection is released whichever way it ends."""
        try:
            batch = _through_finish(self.first)
            if batch:
                yield batch
            if batch and isinstance(batch[-1], Finish):
                return
            async for events in self._rest():
                batch = _through_finish(events)
                yield batch
                if isinstance(batch[-1], Finish):
                    return
        finally:
            self.response.release()

    async def _rest(self) -> AsyncGenerator[list[StreamEvent], None]:
        loop = asyncio.get_running_loop()
        idle = self.bounds.stream_idle_s
        read = self.response.readany
        try:
            while True:
                when = loop.time() + idle
                late = f" (no event for {idle:g}s)"
                if when > self.ends_at:
                    when, late = self.ends_at, f" (the stream lasted over {self.bounds.stream_total_s:g}s)"
                async with asyncio.timeout_at(when):
                    chunk = await read()
                    while chunk and not (events := self._feed(chunk)):
                        chunk = await read()  # bytes that complete no event do not reset the idle clock
                if not chunk:
                    tail = [e for s in self.sse.close() for e in self.decoder.feed(s)]
                    tail += self.decoder.close()
                    if any(isinstance(e, Finish) and e.finish_reason == "error" for e in tail):
                        raise ValueError("the stream ended before the answer did")
                    if tail:
                        yield tail
                    return
                yield events
        except TimeoutError as e:
            raise self._broke(_transport_error(e, late)) from None
        except ClientError as e:
            raise self._broke(_transport_error(e)) from None
        except MALFORMED as e:  # a decoder's StreamError, malformed data, an oversized event
            raise self._broke(decoder_error(e)) from None

    def _feed(self, chunk: bytes) -> list[StreamEvent]:
        return [e for s in self.sse.feed(chunk) for e in self.decoder.feed(s)]

    def _broke(self, err: UpstreamError) -> StreamFailed:
        err = self.walk.broke(self.channel, err, self.health)
        return StreamFailed(err, self.walk.trace())


def _through_finish(events: list[StreamEvent]) -> list[StreamEvent]:
    """`events` up to and with the first `Finish` (nothing after the answer's end is relayed)."""
    for i, ev in enumerate(events):
        if isinstance(ev, Finish):
            return events[: i + 1]
    return events


# Makes a stream's decoder for the channel being tried and its call: the adapter's own, or a same-format
# relay (`server/endpoint.py::_stream`).
DecoderFor = Callable[[Adapter, Channel, UpstreamCall], StreamDecoder]


def own_decoder(adapter: Adapter, ch: Channel, call: UpstreamCall) -> StreamDecoder:
    return adapter.stream_decoder()


async def open_stream(
    client: UpstreamClient,
    plan: Plan,
    req: ChatRequest,
    bounds: Bounds,
    health: Health,
    fit: Fit | None = None,
    decoder_for: DecoderFor = own_decoder,
) -> OpenStream:
    """Try channels in order until one has sent its first event; nothing has reached the client yet.
    Raises `WalkFailed` when none does."""
    walk = Walk(plan, fit)
    try:
        return await _open_first(client, walk, req, bounds, health, decoder_for)
    except FaregateError as e:  # every channel failed, or one blamed the request
        raise walk.failed(e) from None


async def _open_first(
    client: UpstreamClient,
    walk: Walk,
    req: ChatRequest,
    bounds: Bounds,
    health: Health,
    decoder_for: DecoderFor,
) -> OpenStream:
    loop = asyncio.get_running_loop()
    deadline = walk.start(bounds)
    for entry in walk.plan.entries:
        if loop.time() >= deadline:
            walk.out_of_time = True
            break
        ch = entry.channel
        adapter: Adapter = adapter_for(ch.api)
        call = adapter.chat_request(walk.request_for(req, ch), target(ch))
        walk.dropped, walk.local_stops = call.dropped, call.local_stops
        started, t0 = time.perf_counter(), loop.time()
        when, why = _late(loop, t0, bounds.first_byte_s, walk)
        resp: Response | None = None
        sse, decoder = SseDecoder(bounds.max_event_bytes), decoder_for(adapter, ch, call)
        try:
            async with asyncio.timeout_at(when):
                resp = await _send(client, call, bounds)
                if resp.status >= 300:
                    body = await read_bounded(resp, ERROR_BODY_BYTES, truncate=True)
                    err = _status_error(adapter, resp, body)
                else:
                    first = await _first_events(resp, sse, decoder)
        except (TimeoutError, ClientError, BodyTooLarge) as e:
            if resp is not None:
                resp.release()
            walk.out_of_time = loop.time() >= deadline
            walk.fail(ch, _transport_error(e, why), started, health)
            continue
        except MALFORMED as e:  # a decoder's StreamError or malformed data: the channel's fault
            if resp is not None:
                resp.release()
            walk.fail(ch, decoder_error(e), started, health)
            continue
        if resp.status >= 300:
            resp.release()
            walk.fail(ch, err, started, health)
            continue
        ttft = walk.ok(ch, resp.status, started, health)
        return OpenStream(
            ch, resp, sse, decoder, first, ttft, walk, health, bounds, t0 + bounds.stream_total_s
        )
    raise walk.exhausted()


async def _first_events(resp: Response, sse: SseDecoder, decoder: StreamDecoder) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    while not events:
        chunk = await resp.readany()
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
