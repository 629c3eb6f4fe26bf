"""Catalog sync in the server: the `SyncService` started from a cleanup context, and its admin endpoints.

`POST /admin/catalog/sync` (optional `{"provider": ...}`) runs a sync now; `GET /admin/catalog/status` shows
the last run per provider and what is scheduled. Both are behind the admin guard like every `/admin/*`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

import faregate.server.fleet_sync as fleet_sync
from faregate.catalog.sync import SyncService, SyncSnapshot, UnknownSyncProvider, build_snapshot
from faregate.errors import FaregateError, InvalidRequest, NotFound
from faregate.pipeline.runtime import Runtime
from faregate.server.appkeys import HTTP, RUNTIME
from faregate.server.context import read_json

log = logging.getLogger("faregate.catalog.sync")


class SyncOff(FaregateError):
    status, error_type, code = 503, "server_error", "catalog_sync_off"


def snapshot_of(rt: Runtime) -> Callable[[], SyncSnapshot]:
    """What to sync, read from the runtime's current table each time (so it follows reloads)."""

    def snapshot() -> SyncSnapshot:
        loaded = rt.holder.current
        merged, spec = loaded.merged, loaded.spec
        return build_snapshot(
            merged.providers,
            merged.offerings,
            rt.sources.env,
            only=spec.sync_providers,
            inactive=set(loaded.table.inactive),
            interval_s=spec.sync_interval_s,
            timeout_s=spec.server.read_timeout_s,
        )

    return snapshot


async def catalog_sync(app: web.Application) -> AsyncIterator[None]:
    """Needs the store (Sources.store) and the HTTP session; schedules only when the interval is > 0."""
    rt = app[RUNTIME]
    if rt.sources.store is None:
        log.info("catalog sync off: no store")
        yield
        return
    service = SyncService(
        rt.sources.store, app[HTTP], snapshot_of(rt), on_change=rt.reload, fleet_lock=fleet_sync.lock_for(rt)
    )
    rt.catalog_sync = service
    starting = None
    if rt.ready.is_set():
        service.start()
    else:
        starting = asyncio.create_task(_start_when_ready(rt, service), name="faregate-catalog-sync-start")
    try:
        yield
    finally:
        if starting is not None:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        await service.stop()
        rt.catalog_sync = None


async def _start_when_ready(rt: Runtime, service: SyncService) -> None:
    """The schedule reads the table's sync settings: it starts once a starting server's table is in."""
    await rt.ready.wait()
    if rt.start_error is None:
        service.start()


def setup(app: web.Application) -> None:
    """Everything catalog sync adds to the app (one call from create_app, after the HTTP session)."""
    app.cleanup_ctx.append(catalog_sync)
    app.cleanup_ctx.append(fleet_sync.catalog_pickup)
    app.router.add_post("/admin/catalog/sync", handle_sync)
    app.router.add_get("/admin/catalog/status", handle_status)


def _service(request: web.Request) -> SyncService:
    service = request.app[RUNTIME].catalog_sync
    if service is None:
        raise SyncOff("catalog sync needs a store: set server.store in routes.yaml or FAREGATE_STORE")
    return service


async def handle_sync(request: web.Request) -> web.Response:
    service = _service(request)
    provider = None
    if request.can_read_body and request.content_length != 0:
        body = await read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("provider", ""), str | None):
            raise InvalidRequest('the body must be {"provider": "<name>"} or empty', param="provider")
        provider = body.get("provider") or None
    try:
        results = await service.sync(provider)
    except UnknownSyncProvider:
        raise NotFound(f"'{provider}' is not a provider this gateway syncs", param="provider") from None
    loaded = request.app[RUNTIME].holder.current
    return web.json_response(
        {
            "results": [r.as_json() for r in results],
            "generation": loaded.generation,
            "skipped": None if results else "another instance of the fleet is running a sync",
            "reload_errors": service.reload_errors if any(r.changed_anything for r in results) else [],
            "warnings": [str(w) for w in loaded.warnings],
        }
    )


async def handle_status(request: web.Request) -> web.Response:
    status = await _service(request).status()
    loaded = request.app[RUNTIME].holder.current
    status["unpriced"] = [{"model": m, "provider": p} for m, p in loaded.table.unpriced]
    status["warnings"] = [str(w) for w in loaded.warnings]
    return web.json_response(status)
