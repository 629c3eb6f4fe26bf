"""The one fetch driver: GET a provider's listing with its key and a timeout, follow its pages, parse them.

Formats are a table keyed by the provider's `listing` (never its name). Page 1 failing raises
`ListingError`; a later page failing, or the page cap, gives an incomplete `Fetched`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import aiohttp

import faregate.catalog.listing.anthropic as anthropic
import faregate.catalog.listing.gemini as gemini
import faregate.catalog.listing.ollama as ollama
import faregate.catalog.listing.openai as openai
import faregate.catalog.listing.openrouter as openrouter
import faregate.catalog.listing.together as together
from faregate.catalog.listing.base import ListedModel, ListingError, ListingFormat, Page
from faregate.config.model import Listing
from faregate.values import frozen

FORMATS: Final[Mapping[Listing, ListingFormat]] = MappingProxyType(
    {
        "openai": openai.FORMAT,
        "together": together.FORMAT,
        "openrouter": openrouter.FORMAT,
        "anthropic": anthropic.FORMAT,
        "gemini": gemini.FORMAT,
        "ollama": ollama.FORMAT,
    }
)
DEFAULT_MAX_PAGES = 50
SNIPPET = 200


@frozen
class Fetched:
    models: tuple[ListedModel, ...]  # in listing order, first occurrence of each id
    pages: int
    complete: bool
    error: str | None = None  # why it is incomplete


async def fetch_listing(
    session: aiohttp.ClientSession,
    listing: Listing,
    base_url: str,
    api_key: str | None,
    *,
    timeout_s: float,
    page_size: int | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Fetched:
    """Every page of one provider's listing. `timeout_s` bounds each page request."""
    fmt = FORMATS[listing]
    url, headers = fmt.url(base_url), fmt.headers(api_key)
    found: dict[str, ListedModel] = {}
    cursor: str | None = None
    seen: set[str] = set()
    for number in range(1, max_pages + 1):
        try:
            page = await _page(session, fmt, url, headers, fmt.page_query(cursor, page_size), timeout_s)
        except ListingError as e:
            if number == 1:
                raise
            return Fetched(tuple(found.values()), number - 1, False, f"page {number}: {e}")
        for m in page.models:
            found.setdefault(m.upstream_id, m)
        if page.cursor is None:
            return Fetched(tuple(found.values()), number, True)
        if page.cursor in seen:
            return Fetched(tuple(found.values()), number, False, f"page {number}: the cursor repeats")
        seen.add(page.cursor)
        cursor = page.cursor
    return Fetched(tuple(found.values()), max_pages, False, f"stopped after {max_pages} pages")


async def _page(
    session: aiohttp.ClientSession,
    fmt: ListingFormat,
    url: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    timeout_s: float,
) -> Page:
    try:
        async with session.get(
            url, headers=dict(headers), params=dict(query), timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as resp:
            body = await resp.read()
            status = resp.status
    except TimeoutError:
        raise ListingError(f"GET {url}: no answer within {timeout_s:g} s") from None
    except aiohttp.ClientError as e:
        raise ListingError(f"GET {url}: {type(e).__name__}: {e}") from None
    if status != 200:
        raise ListingError(f"GET {url}: HTTP {status}: {_snippet(body)}")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ListingError(f"GET {url}: the answer is not JSON: {_snippet(body)}") from None
    try:
        return fmt.parse(data)
    except ListingError as e:
        raise ListingError(f"GET {url}: malformed listing: {e}") from None


def _snippet(body: bytes) -> str:
    text = body[:SNIPPET].decode("utf-8", "replace").strip()
    return text + ("..." if len(body) > SNIPPET else "") if text else "(empty body)"


__all__ = ["FORMATS", "Fetched", "ListingError", "fetch_listing"]
