"""A server that opened its port before its first decision table was built: `/healthz` answers at once
(`status: loading` until the table is in), `/readyz` is 503 until then, and every other request waits
for the table, then is served as usual (`serve.py` loads it off the event loop after binding; the edge
middleware, `guard.py`, asks `before_table` until then)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from aiohttp import web

from faregate.errors import FaregateError, openai_envelope
from faregate.server.appkeys import RUNTIME
from faregate.server.middleware import Handler


class NotStarted(FaregateError):
    status, error_type, code = 503, "server_error", "not_started"


async def healthz(request: web.Request) -> web.Response:
    """Liveness: 200 as soon as the port is open."""
    rt = request.app[RUNTIME]
    if not rt.ready.is_set():
        return web.json_response({"status": "loading", "simulated": rt.simulated})
    return web.json_response(
        {"status": "ok", "generation": rt.holder.current.generation, "simulated": rt.simulated}
    )


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 503 until the first decision table serves, then 200 (for a load balancer's check)."""
    rt = request.app[RUNTIME]
    if not rt.ready.is_set() or rt.start_error is not None:
        return web.json_response({"status": "loading"}, status=503)
    return web.json_response({"status": "ready", "generation": rt.holder.current.generation})


# Answered while the table loads, by this middleware itself: the others read the table (allowed hosts, CORS).
EARLY: Final[Mapping[str, Handler]] = MappingProxyType({"/healthz": healthz, "/readyz": readyz})


async def before_table(request: web.Request) -> web.StreamResponse | None:
    """A request that came before the first table is in: health answers at once, the rest waits for the
    table (then None: served as usual), or is answered 503 when it could not be built."""
    rt = request.app[RUNTIME]
    early = EARLY.get(request.path)
    if early is not None and request.method == "GET":
        return await early(request)
    await rt.ready.wait()
    if rt.start_error is not None:  # the table could not be built: the server is stopping
        return web.json_response(
            openai_envelope(NotStarted(f"faregate could not start: {rt.start_error}")), status=503
        )
    return None
