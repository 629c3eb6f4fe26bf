"""Overview, usage log and traces: the caller's traffic (every key's for the admin), from the usage log.

The headline figures are the usage log's `totals`, the query behind `GET /v1/metrics`; spend by day, key,
model and provider is the audit's `spend` check over the same rows; a trace is `GET /v1/requests/{id}`'s
record. The live parts are fragments that htmx polls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiohttp import web

import faregate.ui.views as views
from faregate.accounting.record import RequestRecord
from faregate.accounting.usage_log import Totals, days_ago
from faregate.accounting.usage_pages import UsagePage, UsageQuery, filter_choices, read_page
from faregate.pipeline.accounts import Accounts
from faregate.server.appkeys import RUNTIME
from faregate.ui.plumbing import Viewer, page, render


def _accounts(request: web.Request) -> Accounts | None:
    return request.app[RUNTIME].accounts


def _read(accounts: Accounts, viewer: Viewer, since: float) -> tuple[Totals, Sequence[RequestRecord]]:
    """The viewer's sums and rows since `since`: the admin's are every key's, a key's only its own."""
    totals = accounts.usage.totals(key_id=viewer.key_id, since=since, all_keys=viewer.admin)
    rows = accounts.usage.rows(key_id=viewer.key_id, since=since, all_keys=viewer.admin)
    return totals, list(rows)


async def _overview(request: web.Request, viewer: Viewer) -> views.Overview | None:
    accounts = _accounts(request)
    if accounts is None:
        return None
    days = views.period_of(request.query)
    totals, records = await asyncio.to_thread(_read, accounts, viewer, days_ago(days))
    return views.overview(totals, records, days, time.time())


@page()
async def overview(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    ov = await _overview(request, viewer)
    return render(request, "overview.html", viewer=viewer, ov=ov, days=views.period_of(request.query))


@page()
async def overview_live(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The overview's figures, chart data and top lists: polled by the page."""
    ov = await _overview(request, viewer)
    return render(request, "_overview_live.html", viewer=viewer, ov=ov)


def _usage_page(accounts: Accounts, q: UsageQuery, page: int) -> tuple[UsagePage, dict[str, list[str]]]:
    """One page of the usage log and the filter lists, each a query: no more rows are read than shown."""
    return read_page(accounts.usage, q, page, views.PAGE_SIZE), filter_choices(accounts.usage, q)


async def _usage(request: web.Request, viewer: Viewer) -> dict[str, object] | None:
    accounts = _accounts(request)
    if accounts is None:
        return None
    f = views.UsageFilters.parse(request.query)
    page, choices = await asyncio.to_thread(
        _usage_page, accounts, views.usage_query(f, viewer.key_id, viewer.admin), f.page
    )
    return {"filters": f, "page": page, "choices": choices}


@page()
async def usage(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    data = await _usage(request, viewer)
    return render(request, "usage.html", viewer=viewer, data=data)


@page()
async def usage_rows(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    data = await _usage(request, viewer)
    return render(request, "_usage_rows.html", viewer=viewer, data=data)


@page()
async def trace(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """One request's trace, as `GET /v1/requests/{id}` gives it; another key's request is not found."""
    rid = request.match_info["request_id"]
    rec = await asyncio.to_thread(request.app[RUNTIME].recorder.get, rid)
    if rec is not None and not viewer.admin and rec.key_id != viewer.key_id:
        rec = None
    if rec is None:
        return render(request, "missing.html", status=404, viewer=viewer, what=f"request {rid}")
    saved, saved_pct = views.saved_of(rec)
    return render(request, "trace.html", viewer=viewer, rec=rec, saved=saved, saved_pct=saved_pct)
