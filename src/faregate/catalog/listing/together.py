"""Together's `GET {base_url}/models`: a bare array whose entries carry `pricing` in USD per 1M tokens."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

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
from faregate.catalog.model import Kind, Price

# Together's `type`s that faregate can serve; image, audio, rerank and moderation models are skipped.
KINDS: Final[Mapping[str, Kind]] = MappingProxyType(
    {"chat": "chat", "language": "chat", "code": "chat", "embedding": "embedding"}
)


def parse(data: JSON) -> Page:
    models = []
    for i, m in enumerate(items(data, None, "listing")):
        where = f"[{i}]"
        kind_name = m.get("type")
        if kind_name is not None and kind_name not in KINDS:
            continue
        pricing = m.get("pricing")
        price = None
        if pricing is not None:
            p = obj(pricing, f"{where}.pricing")
            price = Price(
                decimal(p.get("input"), f"{where}.pricing.input"),
                decimal(p.get("output"), f"{where}.pricing.output"),
            )
        models.append(
            ListedModel(
                text(m.get("id"), f"{where}.id"),
                name=opt_text(m.get("display_name"), f"{where}.display_name"),
                context=opt_int(m.get("context_length"), f"{where}.context_length"),
                kind=None if kind_name is None else KINDS[kind_name],
                price=price,
            )
        )
    return Page(tuple(models))


FORMAT = ListingFormat(url=joined("/models"), headers=bearer, parse=parse)
