"""The caller's own numbers: `GET /v1/key` (also `/v1/auth/key`, OpenRouter's name), `GET /v1/credits`,
`GET /v1/metrics?days=N&app=A`, `GET /v1/requests/{id}` (the trace) and OpenRouter's `/v1/generation?id=`. Each is scoped to the caller's key; the admin key sees all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from aiohttp import web

from faregate.accounting.pricing import usd_number, usd_text
from faregate.accounting.record import RequestRecord
from faregate.accounting.usage_log import days_ago
from faregate.errors import AuthenticationError, InvalidRequest, NotFound
from faregate.pipeline.accounts import Accounts
from faregate.server.appkeys import RUNTIME
from faregate.server.auth import caller_key, is_admin


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
    spent = await accounts.state.spent_usd(key.id)
    remaining = None if key.budget_usd is None else max(Decimal(0), key.budget_usd - spent)
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
    app = request.query.get("app") or None
    # A key sees its own requests, the admin key all of them, an anonymous caller (auth: open) the anonymous ones.
    t = await asyncio.to_thread(
        accounts.usage.totals,
        key_id=key.id if key else None,
        since=days_ago(days),
        all_keys=is_admin(request),
        app=app,
    )
    saved = t.baseline_usd - t.spend_usd
    return web.json_response(
        {
            "days": days,
            "app": app,
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


async def handle_credits(request: web.Request) -> web.Response:
    """OpenRouter's `/credits`: the key's budget as `total_credits` (null without one) and what it spent.
    The admin key sees the sums over every key."""
    accounts = _accounts(request)
    key = caller_key(request)
    if is_admin(request) and key is None:
        keys = await asyncio.to_thread(accounts.keys.list)
        # each key's spend as its budget sees it: shared by every instance under `state: redis`
        spent = sum([await accounts.state.spent_usd(k.id) for k in keys], Decimal(0))
        budgets = [k.budget_usd for k in keys if k.budget_usd is not None]
        total = sum(budgets, Decimal(0)) if budgets else None
    elif key is not None:
        spent, total = await accounts.state.spent_usd(key.id), key.budget_usd
    else:
        raise AuthenticationError("send an API key to see its credits")
    data = {"total_credits": None if total is None else usd_number(total), "total_usage": usd_number(spent)}
    return web.json_response({"data": data})


async def handle_generation(request: web.Request) -> web.Response:
    """OpenRouter's `/generation?id=`: one request's cost and tokens, in OpenRouter's shape."""
    rid = request.query.get("id")
    if not rid:
        raise InvalidRequest("'id' is required: the id of a completion", param="id")
    rec = await _visible_record(request, rid)
    first = rec.attempts[0].latency_ms if rec.attempts else None
    data = {
        "id": rid,
        "upstream_id": None,
        "total_cost": usd_number(rec.cost_usd),
        "usage": usd_number(rec.cost_usd),
        "cache_discount": None,
        "upstream_inference_cost": usd_number(rec.cost_usd),
        "created_at": datetime.fromtimestamp(rec.created, UTC).isoformat(),
        "model": rec.model_id,
        "app_id": None,
        "app": rec.app,
        "origin": rec.app_url or "",
        "http_referer": rec.app_url,
        "streamed": rec.stream,
        "cancelled": rec.status == 499,
        "provider_name": rec.provider,
        "latency": round(rec.ttft_ms if rec.ttft_ms is not None else rec.latency_ms),
        "generation_time": round(rec.latency_ms - (first or 0)) if first is not None else None,
        "moderation_latency": None,
        "finish_reason": rec.finish_reason,
        "native_finish_reason": rec.finish_reason,
        "tokens_prompt": rec.usage.prompt_tokens,
        "tokens_completion": rec.usage.completion_tokens,
        "native_tokens_prompt": rec.usage.prompt_tokens,
        "native_tokens_completion": rec.usage.completion_tokens,
        "native_tokens_reasoning": 0,
        "native_tokens_cached": rec.usage.cache_read_tokens,
        "num_media_prompt": None,
        "num_media_completion": None,
        "num_search_results": None,
        "is_byok": False,
        "router": rec.route,
        "status": rec.status,
    }
    return web.json_response({"data": data})


# An answer's id is its request id behind its format's prefix (`chatcmpl-`, `cmpl-`, `msg_`; `gen-` as
# OpenRouter's).
RESPONSE_ID_PREFIXES = ("chatcmpl-", "cmpl-", "msg_", "gen-")


def request_id_of(response_id: str) -> str:
    for prefix in RESPONSE_ID_PREFIXES:
        if response_id.startswith(prefix):
            return response_id[len(prefix) :]
    return response_id


async def _visible_record(request: web.Request, response_id: str) -> RequestRecord:
    """The record of a request the caller may see (its own key's; the admin key sees all), else 404."""
    rid = request_id_of(response_id)
    rec = await asyncio.to_thread(request.app[RUNTIME].recorder.get, rid)  # may wait on a batch write
    key = caller_key(request)
    visible = rec is not None and (is_admin(request) or rec.key_id == (key.id if key else None))
    if rec is None or not visible:
        raise NotFound(f"no request '{response_id}' for this key")
    return rec


async def handle_trace(request: web.Request) -> web.Response:
    rec = await _visible_record(request, request.match_info["request_id"])
    return web.json_response(rec.as_json())
