"""Keys (admin only): list with what each spent, create (the secret shown once, on the answer to the
form's POST, never stored or put in a URL), revoke, change limits. The store is `faregate keys`' own."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from aiohttp import web

import faregate.ui.views as views
from faregate.accounting.keys import ApiKey
from faregate.pipeline.accounts import Accounts
from faregate.server.appkeys import RUNTIME
from faregate.ui.plumbing import BASE, UI, Viewer, form_of, page, redirect, render


def _listing(accounts: Accounts) -> list[views.KeyRow]:
    return views.key_rows(
        accounts.keys.list(), accounts.usage.spend_by_key()
    )  # the usage log: every instance's


async def _page(
    request: web.Request,
    viewer: Viewer,
    *,
    status: int = 200,
    created: tuple[str, ApiKey] | None = None,
    error: str | None = None,
) -> web.Response:
    accounts = request.app[RUNTIME].accounts
    rows = await asyncio.to_thread(_listing, accounts) if accounts is not None else None
    return render(request, "keys.html", status=status, viewer=viewer, rows=rows, created=created, error=error)


@page(admin=True)
async def keys(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _page(request, viewer)


def _limits_or_error(form: dict[str, str]) -> tuple[views.Limits | None, str | None]:
    try:
        return views.parse_limits(form), None
    except ValueError as e:
        return None, str(e)


@page(admin=True)
async def create(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    accounts = request.app[RUNTIME].accounts
    form = form_of(request)
    label = form.get("label", "").strip()
    limits, error = _limits_or_error(form)
    if accounts is None:
        error = "this gateway keeps no store: no keys"
    elif not label:
        error = "a key needs a label"
    if error or limits is None or accounts is None:
        return await _page(request, viewer, status=400, error=error)
    created = await asyncio.to_thread(
        accounts.keys.create,
        label,
        budget_usd=limits.budget_usd,
        rpm=limits.rpm,
        tpm=limits.tpm,
        group=limits.group,
    )
    return await _page(request, viewer, created=created)


@page(admin=True)
async def revoke(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    accounts = request.app[RUNTIME].accounts
    key_id = request.match_info["key_id"]
    if accounts is not None:
        await asyncio.to_thread(accounts.keys.revoke, key_id)
        accounts.forget_keys()  # the next request with it is refused, not served from the lookup cache
        await asyncio.to_thread(request.app[UI].sessions.close_key, key_id)
    return redirect(f"{BASE}/keys#key-{key_id}")


@page(admin=True)
async def change_limits(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    accounts = request.app[RUNTIME].accounts
    limits, error = _limits_or_error(form_of(request))
    if accounts is None or limits is None:
        return await _page(request, viewer, status=400, error=error or "no store")
    changes: dict[str, Decimal | int | str | None] = {
        "budget_usd": limits.budget_usd,
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "group": limits.group,
    }
    await asyncio.to_thread(accounts.keys.update, request.match_info["key_id"], **changes)
    accounts.forget_keys()
    return redirect(f"{BASE}/keys#key-{request.match_info['key_id']}")
