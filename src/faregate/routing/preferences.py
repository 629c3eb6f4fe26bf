"""A request's own routing preferences (OpenRouter's `provider` object and `models` list), and how they
narrow the static preferences of routes.yaml. Nothing here can widen what routes.yaml allows."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Literal

from faregate.config.model import Policy, Preferences
from faregate.errors import InvalidRequest
from faregate.values import frozen

Sort = Literal["price", "latency", "throughput"]


@frozen
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
    ignored: tuple[str, ...] = ()  # OpenRouter fields accepted but not enforced, reported in dropped_params


NO_PREFERENCES = RequestPreferences()
ENFORCED = frozenset(
    {
        "order",
        "only",
        "ignore",
        "allow_fallbacks",
        "require_parameters",
        "data_collection",
        "sort",
        "max_price",
    }
)
# OpenRouter's other `provider` fields: accepted, and reported as not enforced (the catalog knows no
# quantizations, retention or distillation terms, and latency is observed rather than promised).
NOT_ENFORCED = frozenset(
    {
        "zdr",
        "enforce_distillable_text",
        "quantizations",
        "preferred_min_throughput",
        "preferred_max_latency",
        "max_latency",
        "min_throughput",
        "experimental",
    }
)
KNOWN = ENFORCED | NOT_ENFORCED

# OpenRouter's provider display names and slugs -> faregate's provider names. Matched case-insensitively;
# a name not listed is used lower-cased as it is (a provider routes.yaml declares under that name).
PROVIDER_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "openai": "openai",
        "anthropic": "anthropic",
        "google": "google",
        "google ai studio": "google",
        "google-ai-studio": "google",
        "google vertex": "google",
        "google-vertex": "google",
        "vertex": "google",
        "groq": "groq",
        "mistral": "mistral",
        "mistral ai": "mistral",
        "mistralai": "mistral",
        "together": "together",
        "together ai": "together",
        "togetherai": "together",
        "deepseek": "deepseek",
        "xai": "xai",
        "x-ai": "xai",
        "x.ai": "xai",
        "openrouter": "openrouter",
        "ollama": "ollama",
        "azure": "azure",
        "microsoft azure": "azure",
        "amazon bedrock": "bedrock",
        "amazon-bedrock": "bedrock",
        "bedrock": "bedrock",
        "fireworks": "fireworks",
        "deepinfra": "deepinfra",
        "cerebras": "cerebras",
        "cohere": "cohere",
        "perplexity": "perplexity",
    }
)


def provider_name(name: str) -> str:
    """faregate's name for a provider named as OpenRouter names it ("OpenAI", "Google Vertex", "groq")."""
    key = name.strip().lower()
    return PROVIDER_NAMES.get(key, key)


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
    ignored = tuple(f"provider.{k}" for k in p if k in NOT_ENFORCED and p[k] not in (None, False, []))
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
        sort=_sort(p),
        max_price_prompt=_price(max_price, "prompt"),
        max_price_completion=_price(max_price, "completion"),
        models=_model_list(models),
        ignored=ignored,
    )


def narrow(static: Preferences, req: RequestPreferences) -> Preferences:
    """The effective preferences: the stricter of routes.yaml's and the request's, field by field."""
    if req is NO_PREFERENCES:
        return static
    only = static.only
    if req.only is not None:
        only = tuple(p for p in req.only if static.only is None or p in static.only)
    if req.order is not None and req.allow_fallbacks is False:
        # OpenRouter: `order` without fallbacks means exactly those providers, tried in that order.
        only = tuple(p for p in req.order if only is None or p in only)
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
    return tuple(dict.fromkeys(provider_name(x) for x in v))


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


def _sort(p: Mapping[str, Any]) -> Sort | None:
    """A string, or OpenRouter's object form `{"by": "price", "partition": ...}`."""
    v = p.get("sort")
    if isinstance(v, Mapping):
        v = v.get("by")
    if v is not None and v not in ("price", "latency", "throughput"):
        raise InvalidRequest(
            "'provider.sort' must be one of price, latency, throughput", param="provider.sort"
        )
    return v  # type: ignore[return-value]  # narrowed by the membership test


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
