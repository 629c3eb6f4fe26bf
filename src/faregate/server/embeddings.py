"""`POST /v1/embeddings`: routed like chat (explicit model or alias), OpenAI shape in and out, cost accounted.

Its `Wire` over the one pipeline (`server/endpoint.py`): the body parsed into an `EmbeddingJob`, planned
and admitted as chat is (no answer tokens), executed by the embeddings call of each channel's adapter and
rendered by the job's format (OpenAI's here; Gemini's `:embedContent` in server/gemini.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web

from faregate.canonical import EmbeddingRequest, EmbeddingResponse, JSONObject, Usage
from faregate.errors import openai_envelope
from faregate.pipeline.bounds import Bounds
from faregate.pipeline.execute import Executed, call_embeddings
from faregate.pipeline.prepare import Demand
from faregate.pipeline.runtime import Runtime
from faregate.pipeline.settle import Exchange
from faregate.providers.openai.embeddings import Decode, parse_embeddings, render_embeddings
from faregate.routing.features import Features
from faregate.routing.plan import Plan
from faregate.routing.table import Baseline, DecisionTable
from faregate.server.context import read_json
from faregate.server.endpoint import Reply, Wire
from faregate.upstream.client import UpstreamClient
from faregate.values import frozen


def token_decoder(rt: Runtime) -> Decode:
    """Token arrays in the encoding of the model the client named (OpenAI's embedding models: cl100k)."""
    return lambda tokens, model: rt.counter.decode(tokens, model or "")


# (answer, the model the client sees, usage, the extras with `cost` and `x-faregate`) -> the format's body
EmbedRender = Callable[[EmbeddingResponse, str, Usage, JSONObject], JSONObject]


@frozen
class EmbeddingJob:
    """An embeddings request in any client format: `render_with` answers in that format."""

    req: EmbeddingRequest
    routing: JSONObject
    render_with: EmbedRender

    @property
    def model(self) -> str | None:
        return self.req.model

    def features(self, rt: Runtime, headers: Mapping[str, str], key_group: str | None) -> Features:
        req = self.req
        prompt_tokens = sum(rt.counter.count_text(s, req.model or "") for s in req.inputs)
        return Features(
            prompt_tokens=prompt_tokens, user_text="\n".join(req.inputs), headers=headers, key_group=key_group
        )

    def demand(self, rt: Runtime, f: Features) -> Demand:
        # An embedding has no answer tokens: admission reserves for none.
        return Demand(self.req.model, f, self.routing, kind="embedding", admit_tokens=0)

    async def execute(
        self,
        upstream: UpstreamClient,
        rt: Runtime,
        bounds: Bounds,
        plan: Plan,
        demand: Demand,
        bound: int | None,
    ) -> Executed[EmbeddingResponse]:
        return await call_embeddings(upstream, plan, self.req, bounds, rt.health)

    def reply(self, rt: Runtime, done: Executed[Any], f: Features) -> Reply:
        resp: EmbeddingResponse = done.answer
        usage = resp.usage if resp.usage.prompt_tokens else Usage(f.prompt_tokens, 0, estimated=True)
        return Reply(resp, usage)

    def render(self, reply: Reply, model: str, extras: JSONObject) -> JSONObject:
        return self.render_with(reply.answer, model, reply.usage, extras)

    def baseline(self, table: DecisionTable) -> Baseline | None:
        return None  # the baseline is a chat model: embeddings are measured against nothing


async def parse(request: web.Request, rt: Runtime, ex: Exchange) -> EmbeddingJob:
    req, fmt, routing = parse_embeddings(await read_json(request), decode=token_decoder(rt))
    return EmbeddingJob(
        req, routing, lambda resp, model, usage, extras: render_embeddings(resp, model, usage, fmt, extras)
    )


EMBEDDINGS: Final = Wire("embeddings", parse, openai_envelope)
