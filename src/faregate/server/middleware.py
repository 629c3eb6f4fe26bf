"""The outer middleware and its helpers: request id and error envelope (then `guard.py` checks the request).

Errors are rendered at this one edge, in the envelope the matched route declares (`server/envelope.py`):
OpenAI's unless the route's format says otherwise.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from faregate.errors import FaregateError, from_http_status
from faregate.server.context import request_id
from faregate.server.envelope import error_body_for

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("faregate.server")


GEMINI_PREFIX: Final = "/v1beta/"
GOOGLE_HEADERS: Final = ("x-goog-api-key", "x-goog-api-client")  # what Google's SDKs send


def speaks_gemini(request: web.Request) -> bool:
    """A request in Gemini's format: anything under `/v1beta`; under `/v1` (google-genai's default version)
    a POST to `models/{model}:method`, and a model listing asked for by a Google client."""
    path = request.path
    if path.startswith(GEMINI_PREFIX):
        return True
    if not (path == "/v1/models" or path.startswith("/v1/models/")):
        return False
    return request.method == "POST" or any(h in request.headers for h in GOOGLE_HEADERS)


async def render_error(request: web.Request, e: FaregateError) -> web.Response:
    body = (await error_body_for(request))(e)
    headers = {**e.headers, "X-Faregate-Request-Id": request_id(request)}
    return web.json_response(body, status=e.status, headers=headers)


@web.middleware
async def error_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The error envelope alone (`guard.edge` does this and the checks in one middleware)."""
    try:
        response = await handler(request)
    except Exception as e:
        return await error_response(request, e)
    return with_request_id(request, response)


async def error_response(request: web.Request, e: Exception) -> web.Response:
    """The answer to what a handler raised, in the route's envelope; re-raises what is not an error (an
    aiohttp redirect)."""
    if isinstance(e, FaregateError):
        return await render_error(request, e)
    if isinstance(e, web.HTTPException):  # aiohttp's own 404/405/413 get our envelope too
        if e.status < 400:
            raise e
        err = from_http_status(e.status, e.reason)
        if "Allow" in e.headers:  # a 405 must say which methods are allowed (RFC 9110)
            err.headers["Allow"] = e.headers["Allow"]
        return await render_error(request, err)
    log.exception("request %s failed", request_id(request), exc_info=e)
    return await render_error(
        request, FaregateError("internal error: see the server log for this request id")
    )


def with_request_id(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    if not response.prepared:
        response.headers["X-Faregate-Request-Id"] = request_id(request)
    return response


def bearer_or_api_key(request: web.Request) -> str | None:
    """The key a client sent: `Authorization: Bearer`, `X-API-Key`, Google's `x-goog-api-key`, or on
    Gemini's paths only, Google's `?key=` query parameter."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    given = request.headers.get("X-API-Key") or request.headers.get("x-goog-api-key")
    if not given and speaks_gemini(request):
        given = request.query.get("key")
    return given or None


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
