"""Admin endpoints: reload, the compiled decision table, and explain (admin key only, see middleware)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

import faregate.server.shared_state as shared_state
import faregate.server.workers as workers
from faregate.config.load import ConfigIssue
from faregate.routing.explain import explain
from faregate.routing.features import extract_features
from faregate.routing.table import Channel, DecisionTable
from faregate.server.appkeys import OPTIONS, RUNTIME
from faregate.server.context import plan_request, read_json


async def handle_reload(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    issues = await rt.reload()
    if issues:
        return web.json_response(
            {
                "reloaded": False,
                "generation": rt.holder.current.generation,
                "errors": [_issue(i) for i in issues],
            },
            status=422,
        )
    loaded = rt.holder.current
    return web.json_response(
        {"reloaded": True, "generation": loaded.generation, "warnings": [_issue(w) for w in loaded.warnings]}
    )


def _channel(c: Channel) -> dict[str, Any]:
    return {
        "channel": c.id,
        "provider": c.provider,
        "model": c.model_id,
        "expected_cost_usd": str(c.expected_cost_usd.normalize()),
        "price_per_1m": {"input": str(c.price.input), "output": str(c.price.output)},
    }


def _issue(i: ConfigIssue) -> dict[str, Any]:
    return {"file": i.file, "line": i.line, "column": i.col, "message": i.message}


def table_json(
    table: DecisionTable, health: dict[str, Any], warnings: Sequence[ConfigIssue] = ()
) -> dict[str, Any]:
    """`warnings`: what the catalog says about routes.yaml (each rule also carries its own)."""
    return {
        "generation": table.generation,
        "aliases": dict(table.aliases),
        "routes": {
            route: [
                {
                    "name": r.name,
                    "when": {k: v for k, v in _when(r.when).items() if v is not None},
                    "strategy": r.strategy,
                    "models": list(r.models),
                    "channels": [_channel(c) for c in r.channels],
                    "excluded": [{"channel": cid, "why": why} for cid, why in r.excluded],
                    "warnings": list(r.warnings),
                    "retired": [
                        {
                            "model": g.model_id,
                            "provider": g.provider,
                            "retired_on": g.on,
                            "by": g.by,
                            "replacement": g.replacement,
                        }
                        for g in r.retired
                    ],
                }
                for r in rules
            ]
            for route, rules in table.routes.items()
        },
        "models": {m: [c.id for c in chs] for m, chs in sorted(table.models.items())},
        "preferences": {
            "data_collection": table.preferences.data_collection,
            "order": list(table.preferences.order),
            "only": None if table.preferences.only is None else list(table.preferences.only),
            "ignore": list(table.preferences.ignore),
            "allow_fallbacks": table.preferences.allow_fallbacks,
        },
        "baseline": table.baseline.model_id if table.baseline else None,
        "inactive_providers": dict(table.inactive),
        "unpriced": [{"model": m, "provider": p} for m, p in table.unpriced],
        "health": health,
        "warnings": [_issue(w) for w in warnings],
    }


def _when(w: Any) -> dict[str, Any]:
    return {
        "has_images": w.has_images,
        "has_tools": w.has_tools,
        "json_mode": w.json_mode,
        "stream": w.stream,
        "prompt_tokens_gt": w.prompt_tokens_gt,
        "prompt_tokens_lt": w.prompt_tokens_lt,
        "prompt_matches": w.prompt_matches.pattern if w.prompt_matches else None,
        "header": dict(w.header) or None,
        "key_group": list(w.key_group) if w.key_group else None,
    }


async def handle_routes(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    loaded = rt.holder.current
    doc = table_json(loaded.table, rt.health.snapshot(time.monotonic()), loaded.warnings)
    doc["state"] = shared_state.describe(rt)
    doc["workers"] = workers.describe(request.app[OPTIONS].worker)
    return web.json_response(doc)


async def handle_explain(request: web.Request) -> web.Response:
    """Body: an OpenAI chat request. Answers how it would be routed, without calling any upstream."""
    from faregate.providers.registry import INBOUND

    rt = request.app[RUNTIME]
    table = rt.holder.current.table
    req, routing = INBOUND["openai"].parse_chat(await read_json(request))
    f = extract_features(req, rt.counter.count_request, request.headers)
    plan = plan_request(request, rt, table, req.model, f, routing, max_tokens=req.max_tokens)
    return web.json_response(explain(table, plan, f))
