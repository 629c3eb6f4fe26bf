"""Which error envelope each route speaks, declared beside the route by the format that owns it.

A `Route` is one entry of the route table; its `envelope` (from the endpoint's `Wire`, or given by the
format's module) says how an error of a request on it is written: the handler's own, the guard's (401,
403) and the router's (a wrong method). `add_routes` registers the table and remembers each route's
envelope by its resource; `server/middleware.py::render_error` asks `error_body_for(request)`, so a new
format touches only its own files. A path no route matches is answered in OpenAI's envelope, unless a
format claims the paths below its prefix with a catch-all route of its own (`unserved`: Gemini's
`/v1beta/...`, Anthropic's `/v1/messages/...`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Final, NamedTuple

from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import AbstractResource

from faregate.canonical import JSONObject
from faregate.errors import FaregateError, openai_envelope

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorBody = Callable[[FaregateError], JSONObject]
Envelope = Callable[[web.Request], ErrorBody]  # the error body for a request on a route
DEFAULT: Final[ErrorBody] = openai_envelope
ENVELOPES: Final[web.AppKey[Mapping[AbstractResource, Envelope]]] = web.AppKey("envelopes")


class Route(NamedTuple):
    method: str
    path: str
    handler: Handler
    envelope: Envelope | None = None  # None: OpenAI's


def speaks(body: ErrorBody) -> Envelope:
    """The envelope of a route that always answers errors in one shape."""
    return lambda _request: body


async def error_body_for(request: web.Request) -> ErrorBody:
    """The error body of the route `request` matched; for a path the router could not serve with this
    method (404, 405), of the first enveloped route of that path; OpenAI's when there is none."""
    envelopes = request.app.get(ENVELOPES)
    if not envelopes:
        return DEFAULT
    resource = request.match_info.route.resource
    if resource is None:  # the router's own 404 or 405
        resource = next((r for r, _ in await _resolved(request) if r in envelopes), None)
    shape = envelopes.get(resource) if resource is not None else None
    return DEFAULT if shape is None else shape(request)


async def _resolved(request: web.Request) -> list[tuple[AbstractResource, set[str]]]:
    """Every resource whose path matches the request's, with the methods it serves."""
    found = []
    for resource in request.app.router.resources():
        _, methods = await resource.resolve(request)
        if methods:
            found.append((resource, methods))
    return found


async def unserved(request: web.Request) -> web.StreamResponse:
    """The handler of a format's catch-all route (every path under its prefix): a path another route
    serves with other methods is a 405 with `Allow`, as the router would say, any other a 404; either in
    the catch-all's envelope."""
    allowed = {m for _, methods in await _resolved(request) for m in methods} - {hdrs.METH_ANY}
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    """Register `routes` and remember the envelope of each resource that declares one."""
    envelopes: dict[AbstractResource, Envelope] = {}
    for r in routes:
        added = app.router.add_route(r.method, r.path, r.handler)
        if r.envelope is not None and added.resource is not None:
            envelopes[added.resource] = r.envelope
    app[ENVELOPES] = envelopes
