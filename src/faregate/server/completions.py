"""`POST /v1/completions`: OpenAI's legacy completions, translated to chat and served by the chat pipeline
(routing, fallback, streaming, accounting), answered as `text_completion` objects. Its `Wire`: the body
parsed into a `ChatJob` whose `CompletionsInbound` renders the answer (with the echoed prompt)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from faregate.errors import openai_envelope
from faregate.pipeline.runtime import Runtime
from faregate.pipeline.settle import Exchange
from faregate.providers.openai.completions import CompletionsInbound, parse_completions, parse_request
from faregate.server.context import read_json
from faregate.server.embeddings import token_decoder
from faregate.server.endpoint import ChatJob, Wire, prompt_bound_of


async def parse(request: web.Request, rt: Runtime, ex: Exchange) -> ChatJob:
    parsed = parse_completions(await read_json(request), decode=token_decoder(rt))
    req, routing = parse_request(parsed)
    inbound = CompletionsInbound(parsed.prompt if parsed.echo else "", parsed.dropped)
    # A token-array prompt is shorter in the body than as text: the body's size bounds nothing then.
    bound = None if parsed.from_tokens else prompt_bound_of(request, req)
    return ChatJob(inbound, req, routing, bound)


COMPLETIONS: Final = Wire("completions", parse, openai_envelope)
