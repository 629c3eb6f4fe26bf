"""The edge: the one middleware every request passes, so a request costs one coroutine frame here, not one
per concern. In this order: the first table loaded (`startup.before_table`: health answers at once before
it), then, with every error rendered in the matched route's envelope (`middleware.error_response`), the
checks: cross-site (Origin, Host, admin bodies), CORS preflight, authentication; then the handler."""

from __future__ import annotations

from aiohttp import web

from faregate.server.appkeys import RUNTIME
from faregate.server.auth import authenticate
from faregate.server.cors import preflight_answer
from faregate.server.crosssite import check_cross_site
from faregate.server.middleware import Handler, error_response, with_request_id
from faregate.server.startup import before_table


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.app[RUNTIME].ready.is_set():
        early = await before_table(request)
        if early is not None:
            return early
    try:
        check_cross_site(request)
        preflight = preflight_answer(request)  # before authentication: browsers send no credentials on it
        if preflight is not None:
            return with_request_id(request, preflight)
        authenticate(request)
        response = await handler(request)
    except Exception as e:
        return await error_response(request, e)
    return with_request_id(request, response)
