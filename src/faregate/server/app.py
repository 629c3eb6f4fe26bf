"""`create_app`: the one place that wires the layers into an aiohttp application.

Order is written out once: middlewares outermost first; cleanup contexts start in order and stop in
reverse, after the handlers in flight have finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Final

import aiohttp
from aiohttp import web

import faregate.server.admin as admin
import faregate.server.catalog_admin as catalog_admin
import faregate.server.gemini as gemini
import faregate.server.models as models
import faregate.server.responses as responses
import faregate.server.usage as usage
import faregate.ui as ui
from faregate.pipeline.runtime import Runtime
from faregate.server.appkeys import HTTP, OPTIONS, RUNTIME, UPSTREAM
from faregate.server.chat import CHAT, MESSAGES
from faregate.server.completions import COMPLETIONS
from faregate.server.cors import add_cors_headers
from faregate.server.count import count_handler, render_anthropic_count
from faregate.server.embeddings import EMBEDDINGS
from faregate.server.endpoint import wire_route
from faregate.server.envelope import Route, add_routes, speaks, unserved
from faregate.server.guard import edge
from faregate.server.optimize import handle_optimize
from faregate.server.options import ServeOptions
from faregate.server.shared_state import shared_state
from faregate.server.startup import healthz, readyz
from faregate.upstream.client import UpstreamClient

log = logging.getLogger("faregate.server")


async def prometheus_text(request: web.Request) -> web.Response:
    body = request.app[RUNTIME].prom.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


# The client API: served under `/v1` and under OpenRouter's base path `/api/v1`, each path also with a
# trailing slash. One table, so every variant is generated rather than repeated.
API_PREFIXES: Final = ("/v1", "/api/v1")
# An entry without an envelope answers errors in OpenAI's; a format's entries carry its own.
ANTHROPIC: Final = speaks(MESSAGES.error_body)
API: Final[tuple[Route, ...]] = (
    wire_route("POST", "/chat/completions", CHAT),
    wire_route("POST", "/messages", MESSAGES),
    Route("POST", "/messages/count_tokens", count_handler("anthropic", render_anthropic_count), ANTHROPIC),
    Route("*", "/messages/{tail:.+}", unserved, ANTHROPIC),  # any other path under messages
    wire_route("POST", "/completions", COMPLETIONS),  # legacy completions, translated to chat
    wire_route("POST", "/embeddings", EMBEDDINGS),
    *(r._replace(path=r.path.removeprefix("/v1")) for r in responses.ROUTES),
    Route(
        "GET",
        "/models",
        gemini.for_google_clients(gemini.handle_list, models.handle_list),
        gemini.for_google_clients_envelope,
    ),
    Route(
        "GET",
        "/models/{model_id:.+}",
        gemini.for_google_clients(gemini.handle_get, models.handle_get),
        gemini.for_google_clients_envelope,
    ),
    Route("POST", "/optimize", handle_optimize),
    Route("GET", "/key", usage.handle_key),
    Route("GET", "/auth/key", usage.handle_key),  # OpenRouter's name for it
    Route("GET", "/credits", usage.handle_credits),
    Route("GET", "/generation", usage.handle_generation),
    Route("GET", "/metrics", usage.handle_metrics),
    Route("GET", "/requests/{request_id}", usage.handle_trace),
)
# Outside the API prefixes: a bare `/chat/completions` (clients given the origin as base URL), admin, health.
OTHER: Final[tuple[Route, ...]] = (
    wire_route("POST", "/chat/completions", CHAT),
    *gemini.ROUTES,  # Gemini's own paths: /v1beta, and POST /v1/models/{model}:method
    Route("POST", "/admin/reload", admin.handle_reload),
    Route("GET", "/admin/routes", admin.handle_routes),
    Route("POST", "/admin/explain", admin.handle_explain),
    Route("GET", "/healthz", healthz),
    Route("GET", "/readyz", readyz),
    Route("GET", "/metrics", prometheus_text),
    *(Route(*r) for r in ui.ROUTES),  # the dashboard (faregate/ui): its own session login, past the key check
)


def routes() -> list[Route]:
    """Every route the app serves: the API under each prefix, then the others; each path also with a
    trailing slash (a `{...:.+}` or `{...:.*}` tail already takes one)."""
    table = [r._replace(path=prefix + r.path) for prefix in API_PREFIXES for r in API] + list(OTHER)
    return [
        r._replace(path=variant)
        for r in table
        for variant in ((r.path,) if r.path.endswith(("+}", "*}")) else (r.path, r.path + "/"))
    ]


def create_app(runtime: Runtime, options: ServeOptions | None = None) -> web.Application:
    opts = options or ServeOptions()
    app = web.Application(middlewares=[edge], client_max_size=opts.max_body_bytes)
    app[RUNTIME] = runtime
    runtime.add_secrets(opts.admin_key)  # scrubbed from whatever is logged, stored or sent
    app[OPTIONS] = opts
    app.on_response_prepare.append(add_cors_headers)
    app.cleanup_ctx.append(http_session)
    app.cleanup_ctx.append(shared_state)
    app.cleanup_ctx.append(usage_writer)
    if opts.watch_interval_s > 0:
        app.cleanup_ctx.append(watch_files)
    ui.setup(app)
    catalog_admin.setup(app)  # catalog sync: its cleanup context (after the session) and admin routes
    add_routes(app, routes())
    return app


async def usage_writer(app: web.Application) -> AsyncIterator[None]:
    """The usage log's batch writer; stopping it (after in-flight handlers) writes what is pending."""
    accounts = app[RUNTIME].accounts
    if accounts is None:
        yield
        return
    accounts.usage.start()
    yield
    await accounts.usage.stop()


async def http_session(app: web.Application) -> AsyncIterator[None]:
    """The upstream clients: faregate's own for chat and embeddings calls (the hot path), one pooled
    aiohttp session for the rest (catalog sync)."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300, enable_cleanup_closed=True)
    # No cookie jar: a cookie one upstream sets must never ride along on another caller's request.
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True, trust_env=False
    ) as session:
        app[HTTP] = session
        app[UPSTREAM] = upstream = UpstreamClient()
        try:
            yield
        finally:
            await upstream.close()


async def watch_files(app: web.Application) -> AsyncIterator[None]:
    """Reload when routes.yaml or a catalog file changes (polling mtimes: no extra dependency, any OS)."""
    rt, interval = app[RUNTIME], app[OPTIONS].watch_interval_s
    # Taken now, before the server accepts requests: an edit made once it serves is never mistaken for
    # the state the table was loaded from (a baseline taken later in the task could already include it).
    first = rt.sources.mtimes()

    async def loop() -> None:
        seen = first
        while True:
            await asyncio.sleep(interval)
            try:
                now = await asyncio.to_thread(rt.sources.mtimes)
            except OSError:
                continue
            if now != seen:
                seen = now
                await rt.reload()

    task = asyncio.create_task(loop(), name="faregate-watch")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
