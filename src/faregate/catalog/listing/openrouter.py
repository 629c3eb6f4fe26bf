"""OpenRouter's `GET {base_url}/models`: per-token prices as decimal strings, context, supported parameters.

Prices become USD per 1M tokens by moving the decimal point (exact, whatever the digits); a negative
price (OpenRouter's `-1` for routers with variable pricing) means "not published".
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from faregate.catalog.listing.base import (
    JSON,
    ListedModel,
    ListingFormat,
    Page,
    bearer,
    decimal,
    items,
    joined,
    obj,
    opt_int,
    opt_text,
    text,
)
from faregate.catalog.model import Price

# supported_parameters -> capability
PARAMETER_CAPS: Final[Mapping[str, str]] = MappingProxyType(
    {"tools": "tools", "response_format": "json", "structured_outputs": "json"}
)


def per_million(per_token: JSON, where: str) -> Decimal | None:
    """USD per token (a decimal string) as USD per 1M tokens, exactly: 10^6 times, by the exponent."""
    d = decimal(per_token, where)
    if d < 0:
        return None
    sign, digits, exponent = d.as_tuple()
    assert isinstance(exponent, int)  # finite: checked by `decimal`
    return Decimal((sign, digits, exponent + 6))


def parse_price(pricing: JSON, where: str) -> Price | None:
    p = obj(pricing, where)
    prompt = per_million(p.get("prompt"), f"{where}.prompt")
    completion = per_million(p.get("completion"), f"{where}.completion")
    if prompt is None or completion is None:
        return None
    cache = {
        field: per_million(p[key], f"{where}.{key}")
        for key, field in (("input_cache_read", "cached_input"), ("input_cache_write", "cache_write"))
        if p.get(key) is not None
    }
    return Price(prompt, completion, cache.get("cached_input"), cache.get("cache_write"))


def _caps(m: dict[str, Any], arch: dict[str, Any]) -> dict[str, bool]:
    params = set(m.get("supported_parameters") or ())
    caps = {cap: False for cap in PARAMETER_CAPS.values()}
    for param, cap in PARAMETER_CAPS.items():
        caps[cap] = caps[cap] or param in params
    caps["vision"] = "image" in (arch.get("input_modalities") or ())
    return caps


def parse(data: JSON) -> Page:
    models = []
    for i, m in enumerate(items(data, "data", "listing")):
        where = f"data[{i}]"
        arch = obj(m.get("architecture") or {}, f"{where}.architecture")
        top = obj(m.get("top_provider") or {}, f"{where}.top_provider")
        context = m.get("context_length") or top.get("context_length")
        embeds = "embeddings" in (arch.get("output_modalities") or ())
        models.append(
            ListedModel(
                text(m.get("id"), f"{where}.id"),
                name=opt_text(m.get("name"), f"{where}.name"),
                context=opt_int(context, f"{where}.context_length"),
                kind="embedding" if embeds else "chat",
                price=parse_price(m.get("pricing"), f"{where}.pricing"),
                caps=MappingProxyType(_caps(m, arch)),
            )
        )
    return Page(tuple(models))


FORMAT = ListingFormat(url=joined("/models"), headers=bearer, parse=parse)
