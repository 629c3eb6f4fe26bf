"""Ollama's `GET {origin}/api/tags`: the models pulled on a local server, all free (price 0)."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from faregate.catalog.listing.base import JSON, ListedModel, ListingFormat, Page, items, obj, text
from faregate.catalog.model import Price

FREE = Price(Decimal(0), Decimal(0))
EMBEDDING_FAMILIES: Final = frozenset({"bert", "nomic-bert"})


def url(base_url: str) -> str:
    """base_url is the OpenAI-compatible root (`http://host:11434/v1`); tags live at the origin."""
    return base_url.rstrip("/").removesuffix("/v1") + "/api/tags"


def no_key(key: str | None) -> dict[str, str]:
    return {}


def parse(data: JSON) -> Page:
    models = []
    for i, m in enumerate(items(data, "models", "listing")):
        name = text(m.get("name") or m.get("model"), f"models[{i}].name")
        family = obj(m.get("details") or {}, f"models[{i}].details").get("family")
        embeds = family in EMBEDDING_FAMILIES or "embed" in name
        models.append(ListedModel(name, kind="embedding" if embeds else "chat", price=FREE))
    return Page(tuple(models))


FORMAT = ListingFormat(url=url, headers=no_key, parse=parse)
