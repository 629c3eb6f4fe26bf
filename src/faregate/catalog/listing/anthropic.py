"""Anthropic's `GET {base_url}/v1/models`: cursor pages (`has_more`, `last_id` -> `after_id`), no prices."""

from __future__ import annotations

from faregate.catalog.listing.base import (
    JSON,
    ListedModel,
    ListingError,
    ListingFormat,
    Page,
    items,
    joined,
    obj,
    opt_int,
    opt_text,
    text,
)

VERSION = "2023-06-01"  # the anthropic-version header every request must carry


def headers(key: str | None) -> dict[str, str]:
    return {"anthropic-version": VERSION, **({"x-api-key": key} if key else {})}


def page_query(cursor: str | None, size: int | None) -> dict[str, str]:
    return {
        **({"limit": str(size)} if size else {}),
        **({"after_id": cursor} if cursor else {}),
    }


def parse(data: JSON) -> Page:
    body = obj(data, "listing")
    models = tuple(
        ListedModel(
            text(m.get("id"), f"data[{i}].id"),
            name=opt_text(m.get("display_name"), f"data[{i}].display_name"),
            context=opt_int(m.get("max_input_tokens"), f"data[{i}].max_input_tokens"),
        )
        for i, m in enumerate(items(body, "data", "listing"))
    )
    has_more = body.get("has_more", False)
    if not isinstance(has_more, bool):
        raise ListingError(f"has_more: expected true or false, got {has_more!r}")
    cursor = text(body.get("last_id"), "last_id") if has_more else None
    return Page(models, cursor)


FORMAT = ListingFormat(url=joined("/v1/models"), headers=headers, parse=parse, page_query=page_query)
