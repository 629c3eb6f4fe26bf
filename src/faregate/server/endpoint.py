"""The one pipeline every answering endpoint runs: parse → prepare → execute → render → settle.

An endpoint is a `Wire`, a small table of its wire functions: its name in the usage log, `parse` (the
HTTP request → a `Job`), and its error envelope (`error_body`; `wire_route` makes the route table's
entry, whose every error `server/middleware.py` renders in it, see `server/envelope.py`). A `Job` is one
parsed request of one kind of answer: a chat (`ChatJob`: chat completions, messages, responses, Gemini and
legacy completions alike, each rendered and streamed by its format's `Inbound`) or embeddings
(`EmbeddingJob` in `server/embeddings.py`, for OpenAI's and Gemini's embedding endpoints).

`serve` calls the stages in order, each taking what it needs and returning a value (`Demand`, `Plan`,
`Ticket`, `Executed` or `WalkFailed` with the walk's `Trace`, `Charge`), keeps them in this request's
`_Story`, private to this module, and whatever happened settles them into the request's one record.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from aiohttp import web

from faregate.accounting.limits import Ticket
from faregate.accounting.tokens import prompt_bound as prompt_tokens_bound
from faregate.canonical import (
    ChatRequest,
    ChatResponse,
    Finish,
    JSONObject,
    Usage,
)
from faregate.errors import FaregateError
from faregate.pipeline.bounds import Bounds
from faregate.pipeline.execute import (
    NO_TRACE,
    Executed,
    StreamFailed,
    Trace,
    WalkFailed,
    call_chat,
    open_stream,
)
from faregate.pipeline.load import Loaded
from faregate.pipeline.prepare import Demand, admit, answer_bound, check_plan, plan_demand
from faregate.pipeline.runtime import Runtime
from faregate.pipeline.settle import (
    Charge,
    Ended,
    Exchange,
    charge,
    provisional,
    record,
    response_headers,
    settle,
)
from faregate.providers.base import (
    Adapter,
    Inbound,
    RelayedAnswer,
    StreamDecoder,
    StreamRelay,
    UpstreamCall,
)
from faregate.providers.reasoning import thought_view, view_thoughts
from faregate.providers.registry import SAME_FORMAT_STREAMS
from faregate.providers.stops import StopFilter, apply_stops
from faregate.providers.translation import Render, Translation, end_of
from faregate.routing.features import Features, extract_features
from faregate.routing.plan import Plan
from faregate.routing.table import Baseline, Channel, DecisionTable
from faregate.routing.transforms import MIDDLE_OUT, MiddleOut, floor_tokens, parse_transforms
from faregate.server.appkeys import RUNTIME, UPSTREAM
from faregate.server.context import begin, json_bytes_response
from faregate.server.envelope import ErrorBody, Route, speaks
from faregate.upstream.client import UpstreamClient
from faregate.values import frozen

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLIENT_GONE = 499  # nginx's "client closed request": what the usage log says when nobody got the answer


@frozen
class Reply:
    """An executed answer made ready to price and render: the answer, its usage, why it ended."""

    answer: Any
    usage: Usage
    finish_reason: str | None = None


class Job(Protocol):
    """One parsed request of one kind of answer: what it asks of routing, how its plan is executed, how
    its answer is counted and rendered."""

    @property
    def model(self) -> str | None:
        """The model the body names."""
        ...

    def features(self, rt: Runtime, headers: Mapping[str, str], key_group: str | None) -> Features:
        """What routing rules match on."""
        ...

    def demand(self, rt: Runtime, f: Features) -> Demand: ...

    async def execute(
        self,
        upstream: UpstreamClient,
        rt: Runtime,
        bounds: Bounds,
        plan: Plan,
        demand: Demand,
        bound: int | None,
    ) -> Executed[Any]: ...

    def reply(self, rt: Runtime, done: Executed[Any], f: Features) -> Reply: ...

    def render(self, reply: Reply, model: str, extras: JSONObject) -> JSONObject: ...

    def baseline(self, table: DecisionTable) -> Baseline | None:
        """What savings are measured against."""
        ...


Parse = Callable[[web.Request, Runtime, Exchange], Awaitable[Job]]


@frozen
class Wire:
    """One endpoint's wire functions over the pipeline."""

    endpoint: str  # its name in the usage log
    parse: Parse
    error_body: ErrorBody


def wire_handler(wire: Wire) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await serve(request, wire)

    return handle


def wire_route(method: str, path: str, wire: Wire) -> Route:
    """The route table's entry for `wire`: its handler, and its errors in its envelope."""
    return Route(method, path, wire_handler(wire), speaks(wire.error_body))


@dataclass(slots=True)
class _Story:
    """What the stages of one request returned so far: written and read in this module only."""

    requested: str = "auto"
    stream: bool = False
    features: Features | None = None
    plan: Plan | None = None
    ticket: Ticket | None = None
    trace: Trace = NO_TRACE
    charged: Charge | None = None
    ttft_ms: float | None = None
    status: int = 200
    error: str | None = None
    finish_reason: str | None = None
    text: list[str] = field(default_factory=list)  # a stream's answer so far, for an estimate of its usage

    def fail(self, e: FaregateError, status: int | None = None) -> None:
        self.status, self.error = status or e.status, e.message

    def row(self, ex: Exchange) -> Any:
        return record(
            ex,
            requested=self.requested,
            stream=self.stream,
            features=self.features,
            plan=self.plan,
            trace=self.trace,
            charged=self.charged,
            ended=Ended(self.status, self.error, self.finish_reason),
            ttft_ms=self.ttft_ms,
        )


async def serve(request: web.Request, wire: Wire) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    loaded = rt.holder.current  # read once: this request finishes on this table and its limits
    ex = begin(request, wire.endpoint)
    s = _Story()
    try:
        job = await wire.parse(request, rt, ex)
        return await _answer(request, rt, loaded, ex, job, s)
    except FaregateError as e:
        s.fail(e)
        raise
    except BaseException as e:  # a bug or a cancelled request: the record must not say 200
        cancelled = isinstance(e, asyncio.CancelledError)
        s.status = 499 if cancelled else 500
        s.error = "the client went away" if cancelled else f"internal error ({type(e).__name__})"
        raise
    finally:
        settle(rt, s.ticket, s.charged, s.row(ex))


async def _answer(
    request: web.Request, rt: Runtime, loaded: Loaded, ex: Exchange, job: Job, s: _Story
) -> web.StreamResponse:
    """Prepare (plan, admission), then execute and render, plainly or streaming."""
    table, headers = loaded.table, request.headers
    s.requested = headers.get("Faregate-Model") or job.model or "auto"
    s.features = job.features(rt, headers, ex.key_group)
    demand = job.demand(rt, s.features)
    s.stream = demand.stream
    plan = plan_demand(rt, table, demand, headers)
    s.plan, s.requested = plan, plan.requested
    check_plan(plan, table, rt, demand)
    if ex.key is not None and rt.accounts is not None:  # a key to admit: limits and budget
        s.ticket = await admit(rt, ex, plan, demand)
    bound = answer_bound(ex.key, s.ticket, demand.max_tokens)
    if demand.stream and isinstance(job, ChatJob):
        return await _stream(request, rt, loaded, ex, job, demand, bound, s)
    try:
        done = await job.execute(request.app[UPSTREAM], rt, loaded.bounds, plan, demand, bound)
    except WalkFailed as e:
        s.trace = e.trace
        raise e.error from None
    s.trace = done.trace
    reply = job.reply(rt, done, demand.features)
    ch = done.channel
    s.charged = charge(rt, ex, ch, reply.usage, plan, done.trace, s.ticket, baseline=job.baseline(table))
    s.finish_reason = reply.finish_reason
    out = job.render(reply, ch.model_id, s.charged.extras)
    return json_bytes_response(out, response_headers(ex, ch, plan, s.charged.cost))


# --- chat: every chat format's job ---------------------------------------------------------------------


@frozen
class ChatJob:
    """A chat request in any client format: `inbound` renders its answer and encodes its stream."""

    inbound: Inbound
    req: ChatRequest
    routing: JSONObject
    prompt_bound: int | None = None  # an upper bound of the prompt's tokens (the body's size), if known

    @property
    def model(self) -> str | None:
        return self.req.model

    def features(self, rt: Runtime, headers: Mapping[str, str], key_group: str | None) -> Features:
        """The prompt is counted only when something needs the count; `prompt_bound` decides what it can."""
        count = rt.counter.count_request
        return extract_features(self.req, count, headers, key_group, bound=self.prompt_bound, lazy=True)

    def demand(self, rt: Runtime, f: Features) -> Demand:
        req = self.req
        squeeze = _middle_out(rt, req, f, self.routing)
        return Demand(
            model=req.model,
            features=f,
            routing=self.routing,
            max_tokens=req.max_tokens,
            fit_tokens=None if squeeze is None else floor_tokens(req.messages, squeeze.count),
            fit=None if squeeze is None else (lambda r, ch: squeeze.fit(r, ch.id, ch.context)),
            stream=req.stream,
            files=req.input_files,
        )

    def bounded(self, bound: int | None) -> ChatRequest:
        return self.req if bound == self.req.max_tokens else replace(self.req, max_tokens=bound)

    async def execute(
        self,
        upstream: UpstreamClient,
        rt: Runtime,
        bounds: Bounds,
        plan: Plan,
        demand: Demand,
        bound: int | None,
    ) -> Executed[ChatResponse | RelayedAnswer]:
        return await call_chat(
            upstream, plan, self.bounded(bound), bounds, rt.health, demand.fit, self.inbound
        )

    def reply(self, rt: Runtime, done: Executed[Any], f: Features) -> Reply:
        if not isinstance(done.answer, ChatResponse):  # the same-format path: the upstream's answer, adjusted
            return Reply(done.answer, done.answer.usage, done.answer.finish_reason)
        resp: ChatResponse = apply_stops(done.answer, done.local_stops)
        usage = resp.usage or _estimate(rt, done.channel, f, _generated(resp))  # thinking is billed too
        resp = view_thoughts(resp, thought_view(self.req))
        return Reply(resp, usage, resp.finish_reason)

    def render(self, reply: Reply, model: str, extras: JSONObject) -> JSONObject:
        if not isinstance(reply.answer, ChatResponse):
            relayed: RelayedAnswer = reply.answer
            return relayed.render(model, extras)
        return self.inbound.render_chat(reply.answer, model, reply.usage, extras)

    def baseline(self, table: DecisionTable) -> Baseline | None:
        return table.baseline


def chat_job(inbound: Inbound, request: web.Request, body: Any) -> ChatJob:
    """The body parsed by `inbound`; the request is all in this body, so its size bounds the prompt."""
    req, routing = inbound.parse_chat(body)
    return ChatJob(inbound, req, routing, prompt_bound_of(request, req))


def prompt_bound_of(request: web.Request, req: ChatRequest) -> int | None:
    """An upper bound of the prompt's tokens from the body's size, when the size on the wire is the
    size of the JSON (no Content-Encoding); None when it is not known."""
    size = request.content_length
    if size is None or request.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    return prompt_tokens_bound(size, req)


def _middle_out(rt: Runtime, req: ChatRequest, f: Features, routing: Mapping[str, Any]) -> MiddleOut | None:
    """The middle-out transform when the request asks for it (OpenRouter's `transforms`)."""
    if MIDDLE_OUT not in parse_transforms(routing.get("transforms")):
        return None
    model, tools = req.model or "", req.tools
    return MiddleOut(lambda messages: rt.counter.count_messages(messages, model, tools), f.prompt_tokens)


def _generated(resp: ChatResponse) -> str:
    """Everything the upstream generated, for an estimate of its usage."""
    return resp.reasoning_text + resp.text + "".join(c.arguments for c in resp.tool_calls)


def _estimate(rt: Runtime, ch: Channel, f: Features, completion_text: str) -> Usage:
    """The upstream reported no usage: count with tiktoken and say so."""
    return Usage(f.prompt_tokens, rt.counter.estimate_text(completion_text, ch.model_id), estimated=True)


# --- a chat answer streamed ----------------------------------------------------------------------------


async def _stream(
    request: web.Request,
    rt: Runtime,
    loaded: Loaded,
    ex: Exchange,
    job: ChatJob,
    demand: Demand,
    bound: int | None,
    s: _Story,
) -> web.StreamResponse:
    req, plan, f = job.bounded(bound), s.plan, demand.features
    assert plan is not None
    view = thought_view(req)
    relays: list[StreamRelay] = []

    def decoder_for(adapter: Adapter, ch: Channel, call: UpstreamCall) -> StreamDecoder:
        """The same-format relay where the client's format has one to the channel's and faregate applies
        no stop sequences of its own; else the channel's decoder (then the answer is translated)."""
        same = SAME_FORMAT_STREAMS.get((job.inbound, adapter.api))
        if same is None or call.local_stops:
            return adapter.stream_decoder()
        relays.append(same(ch.model_id, req.include_usage, ex.id, view))
        return relays[-1]

    try:
        upstream = await open_stream(
            request.app[UPSTREAM], plan, req, loaded.bounds, rt.health, demand.fit, decoder_for
        )
    except WalkFailed as e:
        s.trace = e.trace
        raise e.error from None
    ch = upstream.channel
    s.trace, s.ttft_ms = upstream.trace, upstream.ttft_ms
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            **response_headers(ex, ch, plan, None),
        }
    )
    render: Render
    if relays and relays[-1] is upstream.decoder:  # the same-format path: the relay made the bytes
        relay = relays[-1]
        encoder, s.text, render = relay.encoder, relay.text, lambda batch: (relay.take(), end_of(batch))
    else:
        encoder = job.inbound.stream_encoder(ch.model_id, req.include_usage, ex.id)
        stops = StopFilter(upstream.local_stops) if upstream.local_stops else None
        render = Translation(encoder, view, s.text, lambda: f.prompt_tokens, stops).encode
    baseline = job.baseline(loaded.table)
    batches = upstream.batches()

    def closing(ev: Finish) -> bytes:
        usage = ev.usage or _estimate(rt, ch, f, "".join(s.text))
        s.finish_reason = ev.finish_reason
        s.charged = charge(rt, ex, ch, usage, plan, s.trace, s.ticket, baseline=baseline)
        closing_events = encoder.finish(ev, usage, s.charged.extras)
        provisional(rt, s.row(ex))  # the row reaches the journal before the answer's last bytes
        return closing_events

    def charge_partial() -> None:
        """A stream cut short: the upstream has billed what it generated so far, so charge that (estimated)."""
        if s.charged is None:
            usage = _estimate(rt, ch, f, "".join(s.text))
            s.charged = charge(rt, ex, ch, usage, plan, s.trace, s.ticket, baseline=baseline)

    try:
        await response.prepare(request)  # from here the status is fixed: failures end the stream instead
        async for batch in batches:
            data, end = render(batch)
            # The answer's bytes go out before the closing events are made (priced and journaled): the
            # first event is never held back by the end of the answer. The closing events end the body.
            if data:
                await response.write(data)
            if end is not None:
                await response.write_eof(closing(end))
                break
        else:
            raise _dropped("the upstream closed the stream early")
    except FaregateError as e:
        s.fail(e, status=502)
        await _write_quietly(response, encoder.error(e))
    except (ConnectionError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and not _client_gone(request):
            raise
        charge_partial()  # the client hung up (a write failed): not an error of ours, no traceback
        s.fail(FaregateError("the client closed the connection"), status=CLIENT_GONE)
        return response
    except asyncio.CancelledError:
        charge_partial()  # the client hung up while we waited for the upstream (aiohttp cancels us)
        s.fail(FaregateError("the client closed the connection"), status=CLIENT_GONE)
        raise
    except StreamFailed as e:  # the channel has been marked failed and the trace amended
        s.trace = e.trace
        charge_partial()
        err = _dropped(f"{ch.provider}: {e.error.message}")
        s.fail(err, status=502)
        await _write_quietly(response, encoder.error(err))
    finally:
        await batches.aclose()  # releases the upstream connection whichever way the stream ended
    await _write_eof_quietly(response)
    return response


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _dropped(message: str) -> FaregateError:
    e = FaregateError(message, code="upstream_stream_error")
    e.status, e.error_type = 502, "upstream_error"
    return e


async def _write_quietly(response: web.StreamResponse, data: bytes) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write(data)


async def _write_eof_quietly(response: web.StreamResponse) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
