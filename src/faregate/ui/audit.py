"""Audit (admin only): `faregate audit`'s sections, run by the same function over the same files and store
(routes.yaml, the catalog folder, the store), so the counts are the command's."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from aiohttp import web

import faregate.ui.views as views
from faregate.audit.main import audit as run_audit
from faregate.audit.model import DEFAULT_FAIL_ON, SECTIONS, AuditResult
from faregate.audit.shapes import BUILT_IN
from faregate.catalog.files import load_catalog_dir
from faregate.pipeline.runtime import Runtime
from faregate.server.appkeys import RUNTIME
from faregate.ui.plumbing import Viewer, page, render


def store_of(rt: Runtime) -> Path | None:
    """The store the gateway writes: the runtime's, else the usage log's own file."""
    if rt.sources.store is not None:
        return rt.sources.store
    if rt.accounts is None:
        return None
    rows = rt.accounts.db.execute("PRAGMA database_list").fetchall()
    found = next((r[2] for r in rows if r[1] == "main" and r[2]), None)
    return Path(found) if found else None


def audit_now(rt: Runtime, days: int) -> AuditResult | None:
    store = store_of(rt)
    catalog, issues = load_catalog_dir(rt.sources.catalog_dir)
    if issues or store is None:
        return None
    if rt.accounts is not None:
        rt.accounts.usage.flush()  # every answered request is in the rows the audit reads
    return run_audit(
        rt.holder.current.spec,
        catalog,
        store,
        rt.sources.routes,
        days=days,
        tolerance=Decimal(0),
        shapes=BUILT_IN,
        only=SECTIONS,
        fail_on=DEFAULT_FAIL_ON,
    )


@page(admin=True)
async def audit(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    days = views.period_of(request.query)
    result = await asyncio.to_thread(audit_now, request.app[RUNTIME], days)
    sections = views.audit_view(result) if result is not None else None
    return render(request, "audit.html", viewer=viewer, result=result, sections=sections, days=days)
