"""`POST /v1/embeddings`: routed like chat (explicit model or alias), OpenAI shape in and out, cost accounted.
`serve_embeddings` is the pipeline after parsing, shared with Gemini's `:embedContent` (server/gemini.py)."""

from __future__ import annotations

from aiohttp import web

from faregate.canonical import EmbeddingRequest, EmbeddingResponse, JSONObject, Usage
from faregate.pipeline.execute import Walk, call_embeddings
from faregate.pipeline.load import Loaded
from faregate.pipeline.runtime import Runtime
from faregate.providers.openai.embeddings import Decode, parse_embeddings, render_embeddings
from faregate.routing.features import Features
from faregate.routing.table import Channel
from faregate.server.appkeys import HTTP, RUNTIME
from faregate.server.context import Exchange, json_bytes_response, no_channel_error, plan_request, read_json


def token_decoder(rt: Runtime) -> Decode:
    """Token arrays in the encoding of the model the client named (OpenAI's embedding models: cl100k)."""
    return lambda tokens, model: rt.counter.decode(tokens, model or "")


async def serve_embeddings(
    request: web.Request,
    rt: Runtime,
    loaded: Loaded,
    ex: Exchange,
    req: EmbeddingRequest,
    routing: JSONObject,
) -> tuple[Channel, EmbeddingResponse, Usage, JSONObject]:
    """Plan, admit, call and charge a parsed request: (channel, answer, usage, the extras to render)."""
    table = loaded.table
    ex.requested = request.headers.get("Faregate-Model") or req.model or "auto"
    prompt_tokens = sum(rt.counter.count_text(s, req.model or "") for s in req.inputs)
    f = Features(
        prompt_tokens=prompt_tokens,
        user_text="\n".join(req.inputs),
        headers=request.headers,
        key_group=ex.key_group,
    )
    ex.features = f
    plan = plan_request(request, rt, table, req.model, f, routing, kind="embedding")
    ex.plan = plan
    if not plan.entries:
        raise no_channel_error(plan, table, rt)
    await ex.admit(rt, plan, f, 0)  # an embedding has no answer tokens
    walk = Walk(plan)
    ex.walk = walk
    ch, resp = await call_embeddings(request.app[HTTP], walk, req, loaded.bounds, rt.health)
    usage = resp.usage if resp.usage.prompt_tokens else Usage(prompt_tokens, 0, estimated=True)
    return ch, resp, usage, ex.charge(ch, usage, table, rt)


async def handle_embeddings(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    loaded = rt.holder.current  # read once: this request finishes on this table and its limits
    ex = Exchange.begin(request, "embeddings")
    with ex.recorded(rt):
        req, fmt, routing = parse_embeddings(await read_json(request), decode=token_decoder(rt))
        ch, resp, usage, extras = await serve_embeddings(request, rt, loaded, ex, req, routing)
        out = render_embeddings(resp, ch.model_id, usage, fmt, extras)
        return json_bytes_response(out, ex.response_headers(ch))
