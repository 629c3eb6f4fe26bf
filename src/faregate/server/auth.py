"""Who is calling: `auth: keys` needs a key (Bearer or X-API-Key, on every endpoint); `auth: open` takes
anonymous calls and still identifies a valid key when one is sent. The admin key sees everything."""

from __future__ import annotations

import hmac

from aiohttp import web

from faregate.accounting.keys import PREFIX as KEY_PREFIX
from faregate.accounting.keys import ApiKey
from faregate.errors import AuthenticationError, PermissionDenied
from faregate.server.appkeys import CALLER_KEY, IS_ADMIN, OPTIONS, RUNTIME
from faregate.server.middleware import bearer_or_api_key, is_loopback

PUBLIC = ("/healthz", "/readyz")
UI = "/ui"  # the dashboard logs in with its own form and session cookie (faregate/ui)


def caller_key(request: web.Request) -> ApiKey | None:
    return request.get(CALLER_KEY)


def is_admin(request: web.Request) -> bool:
    return request.get(IS_ADMIN) is True


def authenticate(request: web.Request) -> None:
    """Who is calling (`CALLER_KEY`, `IS_ADMIN`), or raise 401/403; last of the guard's checks."""
    opts = request.app[OPTIONS]
    accounts = request.app[RUNTIME].accounts
    given = bearer_or_api_key(request)
    admin = bool(opts.admin_key and given and hmac.compare_digest(given.encode(), opts.admin_key.encode()))
    request[IS_ADMIN] = admin
    if request.path.startswith("/admin/"):
        if opts.admin_key and not admin:
            raise AuthenticationError("admin endpoints need the admin key (FAREGATE_ADMIN_KEY)")
        if not opts.admin_key and not is_loopback(opts.host):
            raise PermissionDenied("set FAREGATE_ADMIN_KEY to use admin endpoints on a non-loopback address")
        return
    if admin or request.path in PUBLIC or request.path == UI or request.path.startswith(UI + "/"):
        return
    # Only `fg_` keys are ours: any other (an OpenAI key an SDK sends on an open gateway) is not looked up.
    ours = given is not None and given.startswith(KEY_PREFIX)
    key = accounts.authenticate(given) if (accounts is not None and ours and given) else None
    if key is not None:
        request[CALLER_KEY] = key
    elif opts.auth == "keys":
        what = (
            "missing API key: send Authorization: Bearer <key> or X-API-Key"
            if not given
            else "invalid or revoked API key"
        )
        raise AuthenticationError(what)
