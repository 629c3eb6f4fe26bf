"""What every handler needs of a request: its id, its JSON body, its identity (`begin`), its plan, a JSON answer."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from faregate import jsonio
from faregate.accounting.attribution import app_attribution
from faregate.errors import InvalidRequest, PayloadTooLarge
from faregate.pipeline.prepare import Kind, plan_for
from faregate.pipeline.runtime import Runtime
from faregate.pipeline.settle import Exchange
from faregate.routing.features import Features
from faregate.routing.plan import Plan
from faregate.routing.table import DecisionTable
from faregate.server.appkeys import CALLER_KEY, OPTIONS, REQUEST_ID, RUNTIME


def request_id(request: web.Request) -> str:
    rid = request.get(REQUEST_ID)
    if rid is None:
        rt = request.app.get(RUNTIME)  # an app without one: a test's bare app
        rid = request[REQUEST_ID] = rt.ids.new() if rt is not None else os.urandom(16).hex()
    return rid


async def read_json(request: web.Request) -> Any:
    """The body as JSON. Too large → 413 (aiohttp enforces `client_max_size`), malformed → 400, and so are
    nesting deeper than `jsonio.MAX_DEPTH` and non-finite numbers (`NaN`), with `param` naming the field."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[OPTIONS].max_body_bytes
        raise PayloadTooLarge(f"request body too large: the limit is {limit} bytes") from None
    if not raw:
        raise InvalidRequest("the request body is empty: send a JSON object")
    try:
        return jsonio.loads_request(raw)
    except jsonio.JsonLimitError as e:
        raise InvalidRequest(str(e), param=e.path or None) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidRequest(f"the request body is not valid JSON: {e}") from None


def plan_request(
    request: web.Request,
    rt: Runtime,
    table: DecisionTable,
    model: str | None,
    f: Features,
    routing: Mapping[str, Any],
    *,
    kind: Kind = "chat",
    max_tokens: int | None = None,
    fit_tokens: int | None = None,
) -> Plan:
    """The request's plan on `table`: its routing fields and headers, with the runtime's health and RNG."""
    return plan_for(
        rt, table, model, f, routing, request.headers, kind=kind, max_tokens=max_tokens, fit_tokens=fit_tokens
    )


def begin(request: web.Request, endpoint: str) -> Exchange:
    """The request's identity: its id, the caller's key, the app it says it is, when it started."""
    key = request.get(CALLER_KEY)
    app, app_url = app_attribution(request.headers)
    return Exchange(
        id=request_id(request),
        endpoint=endpoint,
        created=time.time(),
        started=time.perf_counter(),
        key=key,
        app=app,
        app_url=app_url,
    )


def json_bytes_response(body: Any, headers: dict[str, str]) -> web.Response:
    headers["Content-Type"] = "application/json"  # as a header: aiohttp parses a `content_type` argument
    return web.Response(body=jsonio.dumps(body), headers=headers)
