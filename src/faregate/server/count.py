"""Token counting endpoints: Anthropic's `POST /v1/messages/count_tokens` and Gemini's `:countTokens`.

The request is parsed and planned as the chat request it describes; its prompt is counted (tiktoken) for
the model the plan would try first. Nothing goes upstream and nothing is billed. A count for a model that
is not an OpenAI one is tiktoken's approximation of that model's tokenizer, and says so (`estimated`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from faregate.canonical import ChatRequest, JSONObject
from faregate.pipeline.prepare import Demand, check_plan, plan_demand
from faregate.providers.registry import INBOUND
from faregate.routing.features import extract_features
from faregate.server.appkeys import RUNTIME
from faregate.server.context import begin, json_bytes_response, read_json

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# (token count, what faregate says about it) -> the format's response body
Render = Callable[[int, JSONObject], JSONObject]
# (request, its JSON body) -> the chat request it describes and its routing fields
Parse = Callable[[web.Request, Any], tuple[ChatRequest, JSONObject]]


def counted_exactly(model_id: str) -> bool:
    """tiktoken is the tokenizer of OpenAI's models only; for the others a count is an estimate."""
    return model_id.startswith("openai/")


def count_handler(inbound_name: str, render: Render, *, parse: Parse | None = None) -> Handler:
    """`parse` when the request is not all in the body (Gemini's model is in the URL)."""
    inbound = INBOUND[inbound_name]

    async def handle(request: web.Request) -> web.StreamResponse:
        rt = request.app[RUNTIME]
        table = rt.holder.current.table
        ex = begin(request, "count_tokens")
        body = await read_json(request)
        req, routing = inbound.parse_chat(body) if parse is None else parse(request, body)
        f = extract_features(req, rt.counter.count_request, request.headers, ex.key_group)
        demand = Demand(req.model, f, routing, max_tokens=req.max_tokens, files=req.input_files)
        plan = plan_demand(rt, table, demand, request.headers)
        check_plan(plan, table, rt, demand)
        ch = plan.entries[0].channel
        tokens = rt.counter.count_request(replace(req, model=ch.model_id))
        info: dict[str, Any] = {
            "request_id": ex.id,
            "model": ch.model_id,
            "provider": ch.provider,
            "estimated": not counted_exactly(ch.model_id),
            "counter": rt.counter.encoding_for(ch.model_id).name,
        }
        headers = {
            "X-Faregate-Request-Id": ex.id,
            "X-Faregate-Provider": ch.provider,
            "X-Faregate-Model": ch.model_id,
            "X-Faregate-Estimated": "true" if info["estimated"] else "false",
        }
        return json_bytes_response(render(tokens, info), headers)

    return handle


def render_anthropic_count(tokens: int, info: JSONObject) -> JSONObject:
    """Anthropic's `MessageTokensCount`, with faregate's account of the count beside it."""
    return {"input_tokens": tokens, "x-faregate": info}
