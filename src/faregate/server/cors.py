"""CORS for browser apps (`server.cors` in routes.yaml; no origin is allowed by default).

A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here, before
authentication: browsers send no credentials on it. Every other answer to an allowed origin gets its
`Access-Control-*` headers just before its headers are sent (`on_response_prepare`), so streamed answers
and error envelopes carry them too. Read from the current routes.yaml: a reload changes them.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from faregate.config.model import CorsSpec
from faregate.errors import PermissionDenied
from faregate.server.appkeys import RUNTIME

ALLOW_METHODS: Final = "GET, POST, DELETE, OPTIONS"
# What a browser app may read of an answer besides the CORS-safelisted headers.
EXPOSE_HEADERS: Final = ", ".join(
    (
        "X-Faregate-Request-Id",
        "X-Faregate-Provider",
        "X-Faregate-Model",
        "X-Faregate-Channel",
        "X-Faregate-Rule",
        "X-Faregate-Cost",
        "Retry-After",
    )
)


def _cors(request: web.Request) -> CorsSpec:
    return request.app[RUNTIME].holder.current.spec.server.cors


def is_preflight(request: web.Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def preflight_headers(cors: CorsSpec, origin: str, requested_headers: str | None) -> dict[str, str]:
    """The answer to an allowed origin's preflight: any method of the API, the headers it asked for."""
    headers = {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Max-Age": str(cors.max_age_s),
        "Vary": "Origin",
    }
    if requested_headers:
        headers["Access-Control-Allow-Headers"] = requested_headers
    return headers


def preflight_answer(request: web.Request) -> web.Response | None:
    """The answer to a preflight (204, or raises for an origin not allowed); None for any other request."""
    if not is_preflight(request):
        return None
    cors, origin = _cors(request), request.headers["Origin"]
    if not cors.allows(origin):
        raise PermissionDenied(f"origin {origin!r} is not allowed (server.cors.origins in routes.yaml)")
    headers = preflight_headers(cors, origin, request.headers.get("Access-Control-Request-Headers"))
    return web.Response(status=204, headers=headers)


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: an allowed origin may read the answer and faregate's headers."""
    origin = request.headers.get("Origin")
    if origin is None or "Access-Control-Allow-Origin" in response.headers:
        return
    if not request.app[RUNTIME].ready.is_set():
        return  # a starting server's health answer: no CORS policy is loaded yet
    if _cors(request).allows(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        response.headers.add("Vary", "Origin")
