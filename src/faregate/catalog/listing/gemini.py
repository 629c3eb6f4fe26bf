"""Gemini's `GET {base_url}/models` (models.list): `nextPageToken` pages, context from `inputTokenLimit`.

The kind comes from `supportedGenerationMethods`; models that neither generate nor embed are skipped.
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
    arr,
    items,
    joined,
    obj,
    opt_int,
    opt_text,
    text,
)
from faregate.catalog.model import Kind

METHOD_KINDS: Final[Mapping[str, Kind]] = MappingProxyType(
    {"generateContent": "chat", "embedContent": "embedding"}
)


def headers(key: str | None) -> dict[str, str]:
    return {"x-goog-api-key": key} if key else {}


def page_query(cursor: str | None, size: int | None) -> dict[str, str]:
    return {
        **({"pageSize": str(size)} if size else {}),
        **({"pageToken": cursor} if cursor else {}),
    }


def parse(data: JSON) -> Page:
    body = obj(data, "listing")
    models = []
    for i, m in enumerate(items(body, "models", "listing")):
        where = f"models[{i}]"
        methods = arr(m.get("supportedGenerationMethods", []), f"{where}.supportedGenerationMethods")
        kind = next((METHOD_KINDS[x] for x in methods if x in METHOD_KINDS), None)
        if kind is None:
            continue
        models.append(
            ListedModel(
                text(m.get("name"), f"{where}.name").removeprefix("models/"),
                name=opt_text(m.get("displayName"), f"{where}.displayName"),
                context=opt_int(m.get("inputTokenLimit"), f"{where}.inputTokenLimit"),
                kind=kind,
            )
        )
    token = body.get("nextPageToken")
    return Page(tuple(models), opt_text(token, "nextPageToken") if token else None)


FORMAT = ListingFormat(url=joined("/models"), headers=headers, parse=parse, page_query=page_query)
