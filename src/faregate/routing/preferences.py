"""A request's own routing preferences (OpenRouter's `provider` object and `models` list), and how they
narrow the static preferences of routes.yaml. Nothing here can widen what routes.yaml allows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from faregate.config.model import Policy, Preferences
from faregate.errors import InvalidRequest

Sort = Literal["price", "latency", "throughput"]


@dataclass(frozen=True, slots=True)
class RequestPreferences:
    order: tuple[str, ...] | None = None
    only: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    allow_fallbacks: bool | None = None
    require_parameters: bool = False
    data_collection: Policy | None = None
    sort: Sort | None = None
    max_price_prompt: Decimal | None = None
    max_price_completion: Decimal | None = None
    models: tuple[str, ...] = ()  # model fallbacks after the requested one


NO_PREFERENCES = RequestPreferences()
KNOWN = frozenset(
    {
        "order",
        "only",
        "ignore",
        "allow_fallbacks",
        "require_parameters",
        "data_collection",
        "sort",
        "max_price",
        "quantizations",  # accepted for OpenRouter compatibility; faregate's catalog has no quantizations
    }
)


def parse_request_preferences(fields: Mapping[str, Any]) -> RequestPreferences:
    """`fields` holds the request's routing fields (`provider`, `models`). Raises `InvalidRequest`."""
    provider = fields.get("provider")
    models = fields.get("models")
    if provider is None and models is None:
        return NO_PREFERENCES
    p: Mapping[str, Any] = {} if provider is None else provider
    if not isinstance(p, Mapping):
        raise InvalidRequest("'provider' must be an object", param="provider")
    for key in p:
        if key not in KNOWN:
            raise InvalidRequest(f"unknown field 'provider.{key}'", param=f"provider.{key}")
    max_price = p.get("max_price")
    max_price = {} if max_price is None else max_price
    if not isinstance(max_price, Mapping):
        raise InvalidRequest("'provider.max_price' must be an object", param="provider.max_price")
    return RequestPreferences(
        order=_names(p, "order"),
        only=_names(p, "only"),
        ignore=_names(p, "ignore") or (),
        allow_fallbacks=_bool(p, "allow_fallbacks"),
        require_parameters=bool(_bool(p, "require_parameters")),
        data_collection=_choice(p, "data_collection", ("allow", "deny")),  # type: ignore[arg-type]
        sort=_choice(p, "sort", ("price", "latency", "throughput")),  # type: ignore[arg-type]
        max_price_prompt=_price(max_price, "prompt"),
        max_price_completion=_price(max_price, "completion"),
        models=_model_list(models),
    )


def narrow(static: Preferences, req: RequestPreferences) -> Preferences:
    """The effective preferences: the stricter of routes.yaml's and the request's, field by field."""
    if req is NO_PREFERENCES:
        return static
    only = static.only
    if req.only is not None:
        only = tuple(p for p in req.only if static.only is None or p in static.only)
    return Preferences(
        data_collection="deny" if "deny" in (static.data_collection, req.data_collection) else "allow",
        order=req.order if req.order is not None else static.order,
        only=only,
        ignore=tuple(dict.fromkeys((*static.ignore, *req.ignore))),
        allow_fallbacks=static.allow_fallbacks and req.allow_fallbacks is not False,
        max_price_prompt=_min(static.max_price_prompt, req.max_price_prompt),
        max_price_completion=_min(static.max_price_completion, req.max_price_completion),
    )


def _min(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else min(a, b)


def _names(p: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    v = p.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise InvalidRequest(f"'provider.{key}' must be a list of provider names", param=f"provider.{key}")
    return tuple(v)


def _bool(p: Mapping[str, Any], key: str) -> bool | None:
    v = p.get(key)
    if v is not None and not isinstance(v, bool):
        raise InvalidRequest(f"'provider.{key}' must be a boolean", param=f"provider.{key}")
    return v


def _choice(p: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    v = p.get(key)
    if v is not None and v not in allowed:
        raise InvalidRequest(f"'provider.{key}' must be one of {', '.join(allowed)}", param=f"provider.{key}")
    return v


def _price(p: Mapping[str, Any], key: str) -> Decimal | None:
    v = p.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise InvalidRequest(
            f"'provider.max_price.{key}' must be a number (USD per 1M tokens)",
            param=f"provider.max_price.{key}",
        )
    try:
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    except InvalidOperation:
        raise InvalidRequest(
            f"'provider.max_price.{key}' must be a number", param=f"provider.max_price.{key}"
        ) from None
    if not d.is_finite() or d < 0:
        raise InvalidRequest(
            f"'provider.max_price.{key}' must be a non-negative number", param=f"provider.max_price.{key}"
        )
    return d


def _model_list(models: Any) -> tuple[str, ...]:
    if models is None:
        return ()
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise InvalidRequest("'models' must be a list of model ids or aliases", param="models")
    return tuple(models)
