"""The dashboard's plumbing: its app state, who is looking (session cookie), CSRF, templates, static files.

The gateway's authentication middleware lets `/ui` through: these pages authenticate with their own
session cookie (the browser never sends the key again after the login form).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

import faregate.ui.views as views
from faregate.accounting.keys import ApiKey
from faregate.db import open_db
from faregate.server.appkeys import OPTIONS, RUNTIME
from faregate.ui.sessions import Session, SessionStore
from faregate.values import frozen

if TYPE_CHECKING:
    import jinja2

COOKIE: Final = "faregate_ui"
BASE: Final = "/ui"
# A POST's fields, read once after the CSRF check.
FORM: web.RequestKey[dict[str, str]] = web.RequestKey("ui_form", dict)
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@frozen
class UiState:
    sessions: SessionStore
    static_root: Path

    @property
    def templates(self) -> jinja2.Environment:
        """Made on the first page asked for: a gateway nobody opens the dashboard of never loads Jinja2."""
        return templates()


UI = web.AppKey("faregate.ui", UiState)


@cache
def templates() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("faregate.ui", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(usd=views.usd, when=views.when, ms=views.ms, per_million=views.per_million)
    env.globals.update(base=BASE, periods=views.PERIODS)
    return env


def setup(app: web.Application) -> None:
    """The dashboard's state: templates and the session table (in the store, shared by every worker;
    in memory when the gateway keeps no store)."""
    accounts = app[RUNTIME].accounts
    db = accounts.db if accounts is not None else open_db(":memory:")
    static = Path(str(resources.files("faregate.ui") / "static"))
    app[UI] = UiState(SessionStore(db), static)


@frozen
class Viewer:
    """Who is looking: the admin (sees everything) or a key (sees its own traffic)."""

    session_id: str
    session: Session
    key: ApiKey | None

    @property
    def admin(self) -> bool:
        return self.session.admin

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None

    @property
    def name(self) -> str:
        return "admin" if self.admin else f"{self.key.label} ({self.key.id})" if self.key else "?"


def viewer_of(request: web.Request) -> Viewer | None:
    session_id = request.cookies.get(COOKIE)
    if not session_id:
        return None
    state = request.app[UI]
    session = state.sessions.get(session_id, time.time())
    if session is None:
        return None
    if session.admin:
        return Viewer(session_id, session, None)
    accounts = request.app[RUNTIME].accounts
    key = accounts.keys.get(session.key_id) if accounts is not None and session.key_id else None
    if key is None or not key.active:  # revoked since: the session ends with it
        state.sessions.close(session_id)
        return None
    return Viewer(session_id, session, key)


def csrf_ok(request: web.Request, viewer: Viewer, form: dict[str, str]) -> bool:
    given = request.headers.get("X-CSRF-Token") or form.get("csrf", "")
    return bool(given) and hmac.compare_digest(given.encode(), viewer.session.csrf.encode())


def same_origin(request: web.Request) -> bool:
    """A POST whose Origin (when the browser sends one) is this gateway's own."""
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


def secure_headers(resp: web.StreamResponse) -> web.StreamResponse:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" would make form posts send Origin: null
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    env = request.app[UI].templates
    html = env.get_template(template).render(request_path=request.path, **context)
    resp = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    secure_headers(resp)
    return resp


def redirect(location: str) -> web.Response:
    resp = web.Response(status=303, headers={"Location": location})
    secure_headers(resp)
    return resp


def is_htmx(request: web.Request) -> bool:
    return request.headers.get("HX-Request") == "true"


PageHandler = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(*, admin: bool = False) -> Callable[[PageHandler], Handler]:
    """A dashboard handler: needs a session (else to the login page), the admin's for `admin`, and a valid
    CSRF token on every POST."""

    def wrap(handler: PageHandler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            viewer = viewer_of(request)
            if viewer is None:
                if is_htmx(request):
                    resp = web.Response(status=401, headers={"HX-Redirect": f"{BASE}/login"})
                    return secure_headers(resp)
                return redirect(f"{BASE}/login")
            if admin and not viewer.admin:
                return render(request, "denied.html", status=403, viewer=viewer)
            if request.method == "POST":
                form = {k: str(v) for k, v in (await request.post()).items()}
                if not same_origin(request) or not csrf_ok(request, viewer, form):
                    return render(request, "denied.html", status=403, viewer=viewer, csrf_failed=True)
                request[FORM] = form
            return await handler(request, viewer)

        run.__name__ = getattr(handler, "__name__", "page")
        run.__doc__ = handler.__doc__
        return run

    return wrap


def form_of(request: web.Request) -> dict[str, str]:
    form: dict[str, str] = request.get(FORM, {})
    return form


def admin_key(request: web.Request) -> str | None:
    return request.app[OPTIONS].admin_key


async def static(request: web.Request) -> web.StreamResponse:
    """The dashboard's own CSS/JS and the vendored libraries (public: the login page needs them)."""
    root = request.app[UI].static_root.resolve()
    path = (root / request.match_info["path"]).resolve()
    if not path.is_file() or root not in path.parents or path.suffix not in (".js", ".css", ".svg"):
        raise web.HTTPNotFound()
    resp = web.FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
