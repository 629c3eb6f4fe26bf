"""Log in with the admin key or a faregate key; a server-side session, a cookie with only its random id.

With no admin key set on a loopback gateway (the demo), an empty key logs in as the admin, as the
`/admin/*` endpoints are open there too.
"""

from __future__ import annotations

import asyncio
import hmac
import time

from aiohttp import web

from faregate.accounting.keys import PREFIX as KEY_PREFIX
from faregate.server.appkeys import OPTIONS, RUNTIME
from faregate.server.middleware import is_loopback
from faregate.ui.plumbing import BASE, COOKIE, UI, Viewer, page, redirect, render, same_origin, viewer_of


def _open_admin(request: web.Request) -> bool:
    opts = request.app[OPTIONS]
    return not opts.admin_key and is_loopback(opts.host)


async def login_form(request: web.Request) -> web.StreamResponse:
    if viewer_of(request) is not None:
        return redirect(f"{BASE}/")
    return render(request, "login.html", viewer=None, error=None, open_admin=_open_admin(request))


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    secret = str(form.get("key", "")).strip()
    opts = request.app[OPTIONS]
    if not same_origin(request):
        return render(request, "denied.html", status=403, viewer=None, csrf_failed=True)
    admin = bool(opts.admin_key and secret and hmac.compare_digest(secret.encode(), opts.admin_key.encode()))
    admin = admin or (not secret and _open_admin(request))
    key_id = None
    if not admin:
        accounts = request.app[RUNTIME].accounts
        key = None
        if accounts is not None and secret.startswith(KEY_PREFIX):
            key = await asyncio.to_thread(accounts.authenticate, secret)
        if key is None:
            return render(
                request,
                "login.html",
                status=401,
                viewer=None,
                error="That key is not the admin key nor an active faregate key.",
                open_admin=_open_admin(request),
            )
        key_id = key.id
    sessions = request.app[UI].sessions
    session_id, session = await asyncio.to_thread(sessions.open, admin=admin, key_id=key_id, now=time.time())
    resp = redirect(f"{BASE}/")
    resp.set_cookie(
        COOKIE,
        session_id,
        max_age=int(session.expires - time.time()),
        path=BASE,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return resp


@page()
async def logout(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await asyncio.to_thread(request.app[UI].sessions.close, viewer.session_id)
    resp = redirect(f"{BASE}/login")
    resp.del_cookie(COOKIE, path=BASE)
    return resp
