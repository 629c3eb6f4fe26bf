"""The Responses API: `POST /v1/responses` (any upstream, through the chat pipeline), and the stored
responses: `GET`/`DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`.

A create parses the body, rebuilds the conversation of `previous_response_id` from the store (the
caller's own responses only), and hands the request to the chat pipeline with a `ResponsesInbound` bound
to this response; with `store` (the default) the final response object is stored as it is answered.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from aiohttp import web

from faregate import jsonio
from faregate.canonical import JSONObject, Message
from faregate.errors import InvalidRequest, NotFound, openai_envelope
from faregate.pipeline.runtime import Runtime
from faregate.pipeline.settle import Exchange
from faregate.providers.openai_responses import ResponseMeta, ResponsesInbound, parse_responses
from faregate.providers.openai_responses.inbound import new_item_id
from faregate.providers.openai_responses.items import parse_items
from faregate.providers.openai_responses.reasoning import stored_view
from faregate.server.appkeys import CALLER_KEY, RUNTIME
from faregate.server.context import json_bytes_response, read_json
from faregate.server.endpoint import ChatJob, Wire, wire_route
from faregate.server.envelope import Route

ENDPOINT: Final = "responses"
MAX_LIST: Final = 100


def _key_id(request: web.Request) -> str | None:
    key = request.get(CALLER_KEY)
    return key.id if key else None


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id")


async def parse_create(request: web.Request, rt: Runtime, ex: Exchange) -> ChatJob:
    """The body, with the conversation of `previous_response_id` (the caller's own) before it, for a
    `ResponsesInbound` bound to this response (stored as it is answered, with `store`)."""
    parsed = parse_responses(await read_json(request))
    history: tuple[Message, ...] = ()
    if parsed.previous_response_id is not None:
        items = await asyncio.to_thread(rt.responses.conversation, parsed.previous_response_id, ex.key_id)
        if items is None:
            raise InvalidRequest(
                f"Previous response with id '{parsed.previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        history = parse_items(items, "previous_response_id")
    keep = parsed.store and rt.responses.retention_s > 0

    def on_final(response: JSONObject) -> None:
        if keep:
            rt.responses.put(response, key_id=ex.key_id, request_id=ex.id, input_items=parsed.input_items)

    meta = ResponseMeta(
        f"resp_{ex.id}", int(time.time()), parsed.echo, new_item_id, parsed.summaries, parsed.encrypted
    )
    return ChatJob(ResponsesInbound(meta, on_final), parsed.with_history(history), parsed.routing)


CREATE: Final = Wire(ENDPOINT, parse_create, openai_envelope)


async def handle_get(request: web.Request) -> web.Response:
    rid = request.match_info["response_id"]
    stored = await asyncio.to_thread(request.app[RUNTIME].responses.get, rid, _key_id(request))
    if stored is None:
        raise _not_found(rid)
    include = [*request.query.getall("include", ()), *request.query.getall("include[]", ())]
    return json_bytes_response(stored_view(stored.response, include), {})


async def handle_delete(request: web.Request) -> web.Response:
    rid = request.match_info["response_id"]
    deleted = await asyncio.to_thread(request.app[RUNTIME].responses.delete, rid, _key_id(request))
    if not deleted:
        raise _not_found(rid)
    return json_bytes_response({"id": rid, "object": "response", "deleted": True}, {})


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIST:
        raise InvalidRequest(f"Invalid 'limit': expected an integer between 1 and {MAX_LIST}.", param="limit")
    return value


def page(items: list[JSONObject], query: Any) -> JSONObject:
    """OpenAI's cursor list: `order` (desc by default), `after`/`before` item ids, `limit`."""
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("Invalid 'order': expected 'asc' or 'desc'.", param="order")
    ordered = items if order == "asc" else list(reversed(items))
    ids = [str(i.get("id")) for i in ordered]
    start, stop = 0, len(ordered)
    after, before = query.get("after"), query.get("before")
    if after is not None:
        start = ids.index(after) + 1 if after in ids else len(ordered)
    if before is not None:
        stop = ids.index(before) if before in ids else 0
    window = ordered[start:stop]
    limit = _limit(query.get("limit"))
    data = window[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": len(window) > limit,
    }


async def handle_input_items(request: web.Request) -> web.Response:
    rid = request.match_info["response_id"]
    stored = await asyncio.to_thread(request.app[RUNTIME].responses.get, rid, _key_id(request))
    if stored is None:
        raise _not_found(rid)
    return web.Response(
        body=jsonio.dumps(page(list(stored.input_items), request.query)), content_type="application/json"
    )


ROUTES: Final[tuple[Route, ...]] = (
    wire_route("POST", "/v1/responses", CREATE),
    Route("GET", "/v1/responses/{response_id}", handle_get),
    Route("DELETE", "/v1/responses/{response_id}", handle_delete),
    Route("GET", "/v1/responses/{response_id}/input_items", handle_input_items),
)
