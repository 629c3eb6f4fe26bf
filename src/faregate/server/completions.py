"""`POST /v1/completions`: OpenAI's legacy completions, translated to chat and served by the chat pipeline
(routing, fallback, streaming, accounting), answered as `text_completion` objects."""

from __future__ import annotations

from aiohttp import web

from faregate.providers.openai.completions import CompletionsInbound, parse_completions, parse_request
from faregate.server.appkeys import RUNTIME
from faregate.server.chat import prompt_bound_of, serve_chat
from faregate.server.context import Exchange, read_json
from faregate.server.embeddings import token_decoder

ENDPOINT = "completions"


async def handle_completions(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    loaded = rt.holder.current  # read once: this request finishes on this table and its limits
    ex = Exchange.begin(request, ENDPOINT)
    with ex.recorded(rt):
        parsed = parse_completions(await read_json(request), decode=token_decoder(rt))
        req, routing = parse_request(parsed)
        inbound = CompletionsInbound(parsed.prompt if parsed.echo else "", parsed.dropped)
        # A token-array prompt is shorter in the body than as text: the body's size bounds nothing then.
        bound = None if parsed.from_tokens else prompt_bound_of(request, req)
        return await serve_chat(request, rt, loaded, ex, inbound, req, routing, prompt_bound=bound)
