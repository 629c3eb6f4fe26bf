"""The middlewares, outermost first: request id, error envelope, authentication.

Errors are rendered at this one edge: OpenAI's envelope everywhere, Anthropic's on `/v1/messages`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from faregate.errors import (
    FaregateError,
    anthropic_envelope,
    from_http_status,
    openai_envelope,
)
from faregate.server.context import request_id

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("faregate.server")


def render_error(request: web.Request, e: FaregateError) -> web.Response:
    anthropic = request.path.removeprefix("/api").startswith("/v1/messages")
    body = anthropic_envelope(e) if anthropic else openai_envelope(e)
    headers = {**e.headers, "X-Faregate-Request-Id": request_id(request)}
    return web.json_response(body, status=e.status, headers=headers)


@web.middleware
async def error_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except FaregateError as e:
        return render_error(request, e)
    except web.HTTPException as e:  # aiohttp's own 404/405/413 get our envelope too
        if e.status < 400:
            raise
        err = from_http_status(e.status, e.reason)
        if "Allow" in e.headers:  # a 405 must say which methods are allowed (RFC 9110)
            err.headers["Allow"] = e.headers["Allow"]
        return render_error(request, err)
    except Exception:
        log.exception("request %s failed", request_id(request))
        return render_error(request, FaregateError("internal error: see the server log for this request id"))
    if not response.prepared:
        response.headers["X-Faregate-Request-Id"] = request_id(request)
    return response


def bearer_or_api_key(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("X-API-Key") or None


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
