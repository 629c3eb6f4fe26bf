"""Routes: the compiled decision table per alias (what `GET /admin/routes` returns) with the catalog's
warnings, and an explain form (what `POST /admin/explain` answers), both for the admin."""

from __future__ import annotations

import time

from aiohttp import web

import faregate.ui.views as views
from faregate.errors import FaregateError
from faregate.providers.registry import INBOUND
from faregate.routing.explain import explain
from faregate.routing.features import extract_features
from faregate.server.admin import table_json
from faregate.server.appkeys import RUNTIME
from faregate.server.context import plan_request
from faregate.ui.plumbing import Viewer, form_of, page, render


def _table(request: web.Request) -> dict[str, object]:
    rt = request.app[RUNTIME]
    loaded = rt.holder.current
    return table_json(loaded.table, rt.health.snapshot(time.monotonic()), loaded.warnings)


@page(admin=True)
async def routes(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    doc = _table(request)
    return render(request, "routes.html", viewer=viewer, t=doc, form=views.ExplainForm(), result=None)


@page(admin=True)
async def explain_form(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The plan for a request made of the form's fields, and why each rule matched or not."""
    rt = request.app[RUNTIME]
    table = rt.holder.current.table
    form = views.ExplainForm.parse(form_of(request))
    result: dict[str, object]
    try:
        req, routing = INBOUND["openai"].parse_chat(form.body())
        f = extract_features(req, rt.counter.count_request, request.headers)
        plan = plan_request(request, rt, table, req.model, f, routing, max_tokens=req.max_tokens)
        result = explain(table, plan, f)
    except FaregateError as e:
        result = {"error": {"code": e.code, "message": str(e)}}
    return render(request, "routes.html", viewer=viewer, t=_table(request), form=form, result=result)
