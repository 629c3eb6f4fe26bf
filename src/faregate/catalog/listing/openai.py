"""OpenAI-compatible `GET {base_url}/models` (OpenAI, Groq, Mistral, DeepSeek, xAI): ids, no prices.

Some servers add more: a context length (Groq `context_window`, Mistral `max_context_length`) and
Mistral's `capabilities`; those are read where present.
"""

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
    items,
    joined,
    opt_int,
    text,
)

CONTEXT_FIELDS: Final = ("context_window", "context_length", "max_context_length")
CAPABILITIES: Final[Mapping[str, str]] = MappingProxyType({"function_calling": "tools", "vision": "vision"})


def parse(data: JSON) -> Page:
    models = []
    for i, m in enumerate(items(data, "data", "listing")):
        where = f"data[{i}]"
        if m.get("active") is False:  # Groq lists deactivated models with active: false
            continue
        context = next((opt_int(m[f], f"{where}.{f}") for f in CONTEXT_FIELDS if m.get(f) is not None), None)
        stated = m.get("capabilities")
        caps = (
            {cap: bool(stated[k]) for k, cap in CAPABILITIES.items() if k in stated}
            if isinstance(stated, dict)
            else {}
        )
        models.append(
            ListedModel(text(m.get("id"), f"{where}.id"), context=context, caps=MappingProxyType(caps))
        )
    return Page(tuple(models))


FORMAT = ListingFormat(url=joined("/models"), headers=bearer, parse=parse)
