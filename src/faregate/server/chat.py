"""Chat handlers: `POST /v1/chat/completions` (OpenAI in) and `POST /v1/messages` (Anthropic in).

Parse (wire → canonical), plan, walk the plan, render (canonical → the client's wire format), record.
The same handler serves both formats; only the `Inbound` differs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from faregate.accounting.tokens import prompt_bound as prompt_tokens_bound
from faregate.canonical import (
    ChatRequest,
    Finish,
    JSONObject,
    ReasoningDelta,
    Start,
    StreamEvent,
    TextDelta,
    ToolArgsDelta,
    Usage,
)
from faregate.errors import FaregateError
from faregate.pipeline.execute import StreamFailed, Walk, call_chat, open_stream
from faregate.pipeline.load import Loaded
from faregate.pipeline.runtime import Runtime
from faregate.providers.base import Inbound, StreamEncoder
from faregate.providers.reasoning import ThoughtView, thought_view, view_event, view_thoughts
from faregate.providers.registry import INBOUND
from faregate.providers.stops import StopFilter, apply_stops
from faregate.routing.features import Features, extract_features
from faregate.routing.table import Channel
from faregate.routing.transforms import MIDDLE_OUT, MiddleOut, floor_tokens, parse_transforms
from faregate.server.appkeys import HTTP, RUNTIME
from faregate.server.context import Exchange, json_bytes_response, no_channel_error, plan_request, read_json

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def chat_handler(inbound_name: str, endpoint: str) -> Handler:
    inbound = INBOUND[inbound_name]

    async def handle(request: web.Request) -> web.StreamResponse:
        rt = request.app[RUNTIME]
        loaded = rt.holder.current  # read once: this request finishes on this table and its limits
        ex = Exchange.begin(request, endpoint)
        with ex.recorded(rt):
            body = await read_json(request)
            req, routing = inbound.parse_chat(body)
            bound = prompt_bound_of(
                request, req
            )  # the request is all in this body: its size bounds the prompt
            return await serve_chat(request, rt, loaded, ex, inbound, req, routing, prompt_bound=bound)

    return handle


async def serve_chat(
    request: web.Request,
    rt: Runtime,
    loaded: Loaded,
    ex: Exchange,
    inbound: Inbound,
    req: ChatRequest,
    routing: JSONObject,
    *,
    prompt_bound: int | None = None,
) -> web.StreamResponse:
    """A parsed request's way through the gateway: plan, admit, walk the plan, answer in `inbound`'s format.
    Every inbound format (chat completions, messages, responses) comes through here. The prompt is
    counted only when something needs the count; `prompt_bound` (an upper bound of it) decides what it can."""
    table = loaded.table
    ex.requested = request.headers.get("Faregate-Model") or req.model or "auto"
    ex.stream = req.stream
    f = extract_features(
        req, rt.counter.count_request, request.headers, ex.key_group, bound=prompt_bound, lazy=True
    )
    ex.features = f
    squeeze = _middle_out(rt, req, f, routing)
    fit_tokens = None if squeeze is None else floor_tokens(req.messages, squeeze.count)
    plan = plan_request(
        request, rt, table, req.model, f, routing, max_tokens=req.max_tokens, fit_tokens=fit_tokens
    )
    ex.plan, ex.requested = plan, plan.requested
    if not plan.entries:
        raise no_channel_error(plan, table, rt, req.files())
    await ex.admit(rt, plan, f, req.max_tokens)
    bound = ex.answer_bound(req.max_tokens)
    if bound != req.max_tokens:
        req = replace(req, max_tokens=bound)
    walk = Walk(plan)
    if squeeze is not None:
        walk.fit = lambda r, ch: squeeze.fit(r, ch.id, ch.context)
    ex.walk = walk
    if req.stream:
        return await _stream(request, rt, loaded, inbound, req, f, walk, ex)
    ch, resp = await call_chat(request.app[HTTP], walk, req, loaded.bounds, rt.health)
    resp = apply_stops(resp, walk.local_stops)
    generated = resp.reasoning_text + resp.text + "".join(c.arguments for c in resp.tool_calls)
    resp = view_thoughts(resp, thought_view(req))
    usage = resp.usage or _estimate(rt, ch, f, generated)
    extras = ex.charge(ch, usage, table, rt)
    ex.finish_reason = resp.finish_reason
    out = inbound.render_chat(resp, ch.model_id, usage, extras)
    return json_bytes_response(out, ex.response_headers(ch))


async def _stream(
    request: web.Request,
    rt: Runtime,
    loaded: Loaded,
    inbound: Inbound,
    req: ChatRequest,
    f: Features,
    walk: Walk,
    ex: Exchange,
) -> web.StreamResponse:
    table = loaded.table
    upstream = await open_stream(request.app[HTTP], walk, req, loaded.bounds, rt.health)
    ch = upstream.channel
    ex.ttft_ms = upstream.ttft_ms
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            **ex.response_headers(ch, with_cost=False),
        }
    )
    encoder = inbound.stream_encoder(ch.model_id, req.include_usage, ex.id)
    text: list[str] = []
    events = upstream.events()
    stops = StopFilter(walk.local_stops)
    view = thought_view(req)

    def closing(ev: Finish) -> bytes:
        usage = ev.usage or _estimate(rt, ch, f, "".join(text))
        ex.finish_reason = ev.finish_reason
        closing_events = encoder.finish(ev, usage, ex.charge(ch, usage, table, rt))
        ex.provisional(rt)  # the row reaches the journal before the answer's last bytes
        return closing_events

    def charge_partial() -> None:
        """A stream cut short: the upstream has billed what it generated so far, so charge that (estimated)."""
        if ex.channel is None:
            ex.charge(ch, _estimate(rt, ch, f, "".join(text)), table, rt)

    try:
        await response.prepare(request)  # from here the status is fixed: failures end the stream instead
        async for raw in events:
            if await _relay(response, encoder, stops.feed(raw), text, closing, f, view):
                break
        else:
            raise _dropped("the upstream closed the stream early")
    except FaregateError as e:
        ex.fail(e, status=502)
        await _write_quietly(response, encoder.error(e))
    except (ConnectionError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and not _client_gone(request):
            raise
        charge_partial()  # the client hung up (a write failed): not an error of ours, no traceback
        ex.fail(FaregateError("the client closed the connection"), status=CLIENT_GONE)
        return response
    except asyncio.CancelledError:
        charge_partial()  # the client hung up while we waited for the upstream (aiohttp cancels us)
        ex.fail(FaregateError("the client closed the connection"), status=CLIENT_GONE)
        raise
    except StreamFailed as e:  # the channel has been marked failed and the trace amended
        charge_partial()
        err = _dropped(f"{ch.provider}: {e.error.message}")
        ex.fail(err, status=502)
        await _write_quietly(response, encoder.error(err))
    finally:
        await events.aclose()  # releases the upstream connection whichever way the stream ended
    await _write_eof_quietly(response)
    return response


CLIENT_GONE = 499  # nginx's "client closed request": what the usage log says when nobody got the answer


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _relay(
    response: web.StreamResponse,
    encoder: StreamEncoder,
    events: list[StreamEvent],
    text: list[str],
    closing: Callable[[Finish], bytes],
    f: Features,
    view: ThoughtView,
) -> bool:
    """Write `events` to the client (their reasoning as `view` says); True once the closing events (from
    `closing`) are written."""
    for ev in events:
        if isinstance(ev, Finish):
            await response.write(closing(ev))
            return True
        if isinstance(ev, Start) and ev.usage is None and encoder.start_usage:
            ev = replace(ev, usage=Usage(f.prompt_tokens, 0, estimated=True))  # counted so far
        if isinstance(ev, TextDelta | ReasoningDelta | ToolArgsDelta):
            # what the upstream generated, for an estimate when it reports no usage (thinking is billed)
            text.append(ev.arguments if isinstance(ev, ToolArgsDelta) else ev.text)
        shown = view_event(ev, view)
        chunk = encoder.encode(shown) if shown is not None else b""
        if chunk:
            await response.write(chunk)
    return False


def _middle_out(rt: Runtime, req: ChatRequest, f: Features, routing: Mapping[str, Any]) -> MiddleOut | None:
    """The middle-out transform when the request asks for it (OpenRouter's `transforms`)."""
    if MIDDLE_OUT not in parse_transforms(routing.get("transforms")):
        return None
    model, tools = req.model or "", req.tools
    return MiddleOut(lambda messages: rt.counter.count_messages(messages, model, tools), f.prompt_tokens)


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


def prompt_bound_of(request: web.Request, req: ChatRequest) -> int | None:
    """An upper bound of the prompt's tokens from the body's size, when the size on the wire is the
    size of the JSON (no Content-Encoding); None when it is not known."""
    size = request.content_length
    if size is None or request.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    return prompt_tokens_bound(size, req)


def _estimate(rt: Runtime, ch: Channel, f: Features, completion_text: str) -> Usage:
    """The upstream reported no usage: count with tiktoken and say so."""
    return Usage(f.prompt_tokens, rt.counter.estimate_text(completion_text, ch.model_id), estimated=True)
