"""`GET /v1/models` and `GET /v1/models/{id}`: OpenAI's list shape plus OpenRouter's fields.

Routable models are listed (an active provider, a price), and so are models a catalog sync found at an
active provider with no price anywhere: `pricing: null`, `routable: false` and why (never routed until
priced). Aliases are listed too, as `faregate` models. Prices are USD per token as decimal strings, as
OpenRouter gives them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from faregate.catalog.model import MILLION, Offering
from faregate.errors import ModelNotFound
from faregate.providers.parameters import carried_parameters
from faregate.routing.table import Channel, DecisionTable
from faregate.server.appkeys import RUNTIME

CREATED = 1_700_000_000  # catalog entries carry no creation date; a fixed one keeps the listing stable
NOT_PRICED = (
    "no price anywhere: a catalog sync found it in the provider's listing, which publishes no prices;"
    " not routable until priced (declare its price under `models:` in routes.yaml)"
)


def per_token(price_per_million: Decimal) -> str:
    return format((price_per_million / MILLION).normalize(), "f")


def unpriced_offering(o: Offering) -> dict[str, Any]:
    return {
        "provider": o.provider,
        "upstream_id": o.upstream_id,
        "context_length": o.context,
        "max_output": o.max_output,
        "pricing": None,
        "capabilities": sorted(o.caps),
        "routable": False,
        "not_routable_reason": NOT_PRICED,
    }


def unpriced_entry(table: DecisionTable, model_id: str, offerings: list[Offering]) -> dict[str, Any]:
    """A model known only from a sync, with no price anywhere: listed, so it can be seen and priced."""
    caps = set().union(*(o.caps for o in offerings))
    return {
        "id": model_id,
        "object": "model",
        "created": CREATED,
        "owned_by": model_id.split("/", 1)[0],
        "name": table.model_names.get(model_id, model_id),
        "kind": offerings[0].kind,
        "context_length": max(o.context for o in offerings),
        "pricing": None,
        "routable": False,
        "not_routable_reason": NOT_PRICED,
        "architecture": {
            "input_modalities": ["text", "image"] if "vision" in caps else ["text"],
            "output_modalities": ["text"],
        },
        "supported_parameters": [],
        "offerings": [unpriced_offering(o) for o in offerings],
    }


def unpriced_by_model(table: DecisionTable) -> dict[str, list[Offering]]:
    out: dict[str, list[Offering]] = {}
    for o in table.unpriced_offerings:
        out.setdefault(o.model_id, []).append(o)
    return out


EMBEDDING_PARAMETERS = ("dimensions", "encoding_format", "user")


def supported_parameters(channels: tuple[Channel, ...]) -> list[str]:
    """The request fields at least one of the model's channels carries (OpenRouter's meaning): what each
    channel's wire format maps for that model, less tools and JSON mode where the offering lacks them (the
    same sets `provider.require_parameters` holds a request to)."""
    if all(c.kind == "embedding" for c in channels):
        return list(EMBEDDING_PARAMETERS)
    return sorted(set().union(*(carried_parameters(c) for c in channels)))


def model_entry(
    table: DecisionTable, model_id: str, channels: tuple[Channel, ...], unpriced: list[Offering] | None = None
) -> dict[str, Any]:
    best = min(channels, key=lambda c: (c.price.input, c.price.output))
    caps = set().union(*(c.caps for c in channels))
    params = supported_parameters(channels)
    return {
        "id": model_id,
        "object": "model",
        "created": CREATED,
        "owned_by": model_id.split("/", 1)[0],
        "name": table.model_names.get(model_id, model_id),
        "kind": best.kind,
        "context_length": max(c.context for c in channels),
        "pricing": {
            "prompt": per_token(best.price.input),
            "completion": per_token(best.price.output),
            "request": "0",
            "input_cache_read": per_token(
                best.price.cached_input if best.price.cached_input is not None else best.price.input
            ),
        },
        "architecture": {
            "input_modalities": ["text", "image"] if "vision" in caps else ["text"],
            "output_modalities": ["text"],
        },
        "routable": True,
        "supported_parameters": params,
        "offerings": [
            {
                "provider": c.provider,
                "channel": c.id,
                "upstream_id": c.upstream_id,
                "context_length": c.context,
                "max_output": c.max_output,
                "pricing": {"prompt": per_token(c.price.input), "completion": per_token(c.price.output)},
                "capabilities": sorted(c.caps),
                "data_collection": c.data_collection,
                "routable": True,
            }
            for c in channels
        ]
        + [unpriced_offering(o) for o in unpriced or ()],
    }


def alias_entry(table: DecisionTable, alias: str) -> dict[str, Any]:
    route = table.aliases[alias]
    return {
        "id": alias,
        "object": "model",
        "created": CREATED,
        "owned_by": "faregate",
        "name": f"faregate alias: route '{route}'",
        "alias": True,
        "route": route,
        "rules": [
            {"name": r.name, "strategy": r.strategy, "models": list(r.models)} for r in table.routes[route]
        ],
    }


def list_models(table: DecisionTable) -> list[dict[str, Any]]:
    unpriced = unpriced_by_model(table)
    entries = {m: model_entry(table, m, chs, unpriced.get(m)) for m, chs in table.models.items() if chs}
    for m, offerings in unpriced.items():
        entries.setdefault(m, unpriced_entry(table, m, offerings))
    return [*(alias_entry(table, a) for a in sorted(table.aliases)), *(entries[m] for m in sorted(entries))]


async def handle_list(request: web.Request) -> web.Response:
    table = request.app[RUNTIME].holder.current.table
    return web.json_response({"object": "list", "data": list_models(table)})


async def handle_get(request: web.Request) -> web.Response:
    table = request.app[RUNTIME].holder.current.table
    model_id = request.match_info["model_id"].rstrip("/")  # `/v1/models/{id}/` as well
    if model_id in table.aliases:
        return web.json_response(alias_entry(table, model_id))
    resolved = model_id if model_id in table.known else table.upstream_ids.get(model_id)
    channels = table.models.get(resolved or "", ())
    unpriced = unpriced_by_model(table).get(resolved or "")
    if resolved is not None and channels:
        return web.json_response(model_entry(table, resolved, channels, unpriced))
    if resolved is not None and unpriced:
        return web.json_response(unpriced_entry(table, resolved, unpriced))
    raise ModelNotFound(f"The model '{model_id}' does not exist or is not routable here", param="model")
