"""Models and prices: every offering as the running table sees it, its price history from syncs, the last
sync per provider, and (for the admin) a button that runs a sync now — what `POST /admin/catalog/sync` does."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

import faregate.ui.views as views
from faregate.catalog.store import CatalogStore, PriceRow
from faregate.db import open_db
from faregate.server.appkeys import RUNTIME
from faregate.ui.plumbing import Viewer, form_of, page, render


def read_history(store: Path) -> dict[tuple[str, str], Sequence[PriceRow]]:
    """Every synced offering's price rows, oldest first (one connection, closed after)."""
    db = open_db(store)
    try:
        cs = CatalogStore(db)
        return {(o.provider, o.upstream_id): cs.history(o.provider, o.upstream_id) for o in cs.offerings()}
    finally:
        db.close()


async def _page(request: web.Request, viewer: Viewer, results: list[dict[str, Any]] | None) -> web.Response:
    rt = request.app[RUNTIME]
    store = rt.sources.store
    history = await asyncio.to_thread(read_history, store) if store is not None else {}
    loaded = rt.holder.current
    rows = views.offerings(loaded.merged, loaded.table, history)
    status = await rt.catalog_sync.status() if rt.catalog_sync is not None else None
    return render(
        request,
        "models.html",
        viewer=viewer,
        rows=rows,
        sync_status=status,
        results=results,
        routable=sum(r.routable for r in rows),
    )


@page()
async def models(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _page(request, viewer, None)


@page(admin=True)
async def sync(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Run a sync now (one provider, or every one), then show the page with what it did."""
    service = request.app[RUNTIME].catalog_sync
    if service is None:
        return await _page(request, viewer, [])
    provider = form_of(request).get("provider") or None
    known = set((await service.status())["providers"])
    if provider is not None and provider not in known:
        provider = None
    results = await service.sync(provider)
    return await _page(request, viewer, [r.as_json() for r in results])
