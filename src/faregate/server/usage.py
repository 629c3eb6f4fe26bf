"""The caller's own numbers: `GET /v1/key` (OpenRouter's /auth/key), `GET /v1/metrics?days=N`,
`GET /v1/requests/{id}` (the trace). Each is scoped to the caller's key; the admin key sees all."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from aiohttp import web

from faregate.accounting.pricing import usd_number, usd_text
from faregate.accounting.usage_log import days_ago
from faregate.errors import AuthenticationError, InvalidRequest, NotFound
from faregate.server.accounts import Accounts
from faregate.server.auth import caller_key, is_admin
from faregate.server.keys import RUNTIME


def _accounts(request: web.Request) -> Accounts:
    accounts = request.app[RUNTIME].accounts
    if accounts is None:
        raise NotFound("this gateway keeps no usage log (no store configured)")
    return accounts


async def handle_key(request: web.Request) -> web.Response:
    key = caller_key(request)
    if key is None:
        raise AuthenticationError("send an API key to see its usage and limits")
    accounts = _accounts(request)
    spent = accounts.limits.spent_usd.get(key.id, Decimal(0))
    remaining = accounts.limits.remaining_usd(key)
    return web.json_response(
        {
            "data": {
                "id": key.id,
                "label": key.label,
                "usage": usd_number(spent),
                "limit": None if key.budget_usd is None else usd_number(key.budget_usd),
                "limit_remaining": None if remaining is None else usd_number(remaining),
                "is_free_tier": False,
                "group": key.group,
                "rate_limit": {"requests": key.rpm, "tokens": key.tpm, "interval": "1m"},
            }
        }
    )


async def handle_metrics(request: web.Request) -> web.Response:
    accounts = _accounts(request)
    try:
        days = float(request.query.get("days", "30"))
    except ValueError:
        raise InvalidRequest("'days' must be a number", param="days") from None
    if not 0 < days <= 3660:
        raise InvalidRequest("'days' must be between 0 and 3660", param="days")
    key = caller_key(request)
    # A key sees its own requests, the admin key all of them, an anonymous caller (auth: open) the anonymous ones.
    t = await asyncio.to_thread(
        accounts.usage.totals,
        key_id=key.id if key else None,
        since=days_ago(days),
        all_keys=is_admin(request),
    )
    saved = t.baseline_usd - t.spend_usd
    return web.json_response(
        {
            "days": days,
            "total_requests": t.requests,
            "total_tokens": t.prompt_tokens + t.completion_tokens,
            "total_spend": usd_number(t.spend_usd),
            "estimated_spend_without_routing": usd_number(t.baseline_usd),
            "total_saved": usd_number(saved),
            "average_latency_ms": round(t.latency_ms_sum / t.requests, 2) if t.requests else 0.0,
            "error_rate": round(t.errors / t.requests, 4) if t.requests else 0.0,
            # JSON numbers are exact to 15 significant digits; these strings are exact at any size.
            "exact_usd": {
                "total_spend": usd_text(t.spend_usd),
                "estimated_spend_without_routing": usd_text(t.baseline_usd),
                "total_saved": usd_text(saved),
            },
        }
    )


# An answer's id is its request id behind its format's prefix (`chatcmpl-`, `msg_`; `gen-` as OpenRouter's).
RESPONSE_ID_PREFIXES = ("chatcmpl-", "msg_", "gen-")


def request_id_of(response_id: str) -> str:
    for prefix in RESPONSE_ID_PREFIXES:
        if response_id.startswith(prefix):
            return response_id[len(prefix) :]
    return response_id


async def handle_trace(request: web.Request) -> web.Response:
    rid = request_id_of(request.match_info["request_id"])
    rec = await asyncio.to_thread(request.app[RUNTIME].recorder.get, rid)  # may wait on a batch write
    key = caller_key(request)
    visible = rec is not None and (is_admin(request) or rec.key_id == (key.id if key else None))
    if rec is None or not visible:
        raise NotFound(f"no request '{rid}' for this key")
    return web.json_response(rec.as_json())
