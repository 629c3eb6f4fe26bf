"""The dashboard at `/ui`: server-rendered pages (Jinja2) with htmx for live parts and uPlot for charts.

`ROUTES` is what the server's route table registers; `setup` adds the dashboard's state to the app.
Handlers read the gateway's own data sources (usage log, traces, catalog, decision table, keys, audit);
the view models in `views` are pure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

import faregate.ui.audit as audit
import faregate.ui.catalog as catalog
import faregate.ui.keys as keys
import faregate.ui.login as login
import faregate.ui.routing as routing
import faregate.ui.traffic as traffic
from faregate.ui.plumbing import setup, static

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ROUTES: Final[tuple[tuple[str, str, Handler], ...]] = (
    ("GET", "/ui", traffic.overview),
    ("GET", "/ui/overview/live", traffic.overview_live),
    ("GET", "/ui/login", login.login_form),
    ("POST", "/ui/login", login.login),
    ("POST", "/ui/logout", login.logout),
    ("GET", "/ui/usage", traffic.usage),
    ("GET", "/ui/usage/rows", traffic.usage_rows),
    ("GET", "/ui/requests/{request_id}", traffic.trace),
    ("GET", "/ui/models", catalog.models),
    ("POST", "/ui/models/sync", catalog.sync),
    ("GET", "/ui/routes", routing.routes),
    ("POST", "/ui/routes/explain", routing.explain_form),
    ("GET", "/ui/keys", keys.keys),
    ("POST", "/ui/keys", keys.create),
    ("POST", "/ui/keys/{key_id}/revoke", keys.revoke),
    ("POST", "/ui/keys/{key_id}/limits", keys.change_limits),
    ("GET", "/ui/audit", audit.audit),
    ("GET", "/ui/static/{path:.+}", static),
)

__all__ = ["ROUTES", "setup"]
