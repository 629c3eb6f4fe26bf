"""The guard: every check a request passes before its handler, in one middleware (one coroutine frame per
request, not one per check), in this order: cross-site (Origin, Host, admin bodies), CORS preflight,
authentication. Errors are raised and rendered by `middleware.error_envelope`, which wraps it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from faregate.server.auth import authenticate
from faregate.server.cors import preflight_answer
from faregate.server.crosssite import check_cross_site

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    check_cross_site(request)
    answer = preflight_answer(request)  # before authentication: browsers send no credentials on it
    if answer is not None:
        return answer
    authenticate(request)
    return await handler(request)
