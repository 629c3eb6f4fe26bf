"""The Responses API: `POST /v1/responses` (any upstream, through the chat pipeline), and the stored
responses: `GET`/`DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`.

A create parses the body, rebuilds the conversation of `previous_response_id` from the store (the
caller's own responses only), and hands the request to `serve_chat` with a `ResponsesInbound` bound to
this response; with `store` (the default) the final response object is stored as it is answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from faregate import jsonio
from faregate.canonical import JSONObject, Message
from faregate.errors import InvalidRequest, NotFound
from faregate.providers.openai_responses import ResponseMeta, ResponsesInbound, parse_responses
from faregate.providers.openai_responses.inbound import new_item_id
from faregate.providers.openai_responses.items import parse_items
from faregate.server.appkeys import CALLER_KEY, RUNTIME
from faregate.server.chat import serve_chat
from faregate.server.context import Exchange, json_bytes_response, read_json

ENDPOINT: Final = "responses"
MAX_LIST: Final = 100


def _key_id(request: web.Request) -> str | None:
    key = request.get(CALLER_KEY)
    return key.id if key else None


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id")


async def handle_create(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    loaded = rt.holder.current  # read once: this request finishes on this table and its limits
    ex = Exchange.begin(request, ENDPOINT)
    with ex.recorded(rt):
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

        meta = ResponseMeta(f"resp_{ex.id}", int(time.time()), parsed.echo, new_item_id)
        inbound = ResponsesInbound(meta, on_final)
        req = parsed.with_history(history)
        return await serve_chat(request, rt, loaded, ex, inbound, req, parsed.routing)


async def handle_get(request: web.Request) -> web.Response:
    rid = request.match_info["response_id"]
    stored = await asyncio.to_thread(request.app[RUNTIME].responses.get, rid, _key_id(request))
    if stored is None:
        raise _not_found(rid)
    return json_bytes_response(stored.response, {})


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


ROUTES: Final[tuple[tuple[str, str, Callable[[web.Request], Any]], ...]] = (
    ("POST", "/v1/responses", handle_create),
    ("GET", "/v1/responses/{response_id}", handle_get),
    ("DELETE", "/v1/responses/{response_id}", handle_delete),
    ("GET", "/v1/responses/{response_id}/input_items", handle_input_items),
)
