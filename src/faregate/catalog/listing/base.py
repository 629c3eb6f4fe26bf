"""What every listing parser returns (`ListedModel`, `Page`), its one error, and the checks parsers share.

Parsers are pure: one page of JSON in, models and the next-page cursor out; `fetch.py` does the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, TypeAlias

from faregate.catalog.model import Kind, Price
from faregate.values import frozen

JSON: TypeAlias = Any
Headers: TypeAlias = Callable[[str | None], dict[str, str]]
NO_CAPS: Mapping[str, bool] = MappingProxyType({})


class ListingError(Exception):
    """A listing could not be read: HTTP error, timeout, or a body that is not the documented shape."""


@frozen
class ListedModel:
    """One model as a provider lists it. None (or no cap) means the listing does not say."""

    upstream_id: str
    name: str | None = None
    context: int | None = None
    kind: Kind | None = None
    price: Price | None = None  # USD per 1M tokens, only where the listing publishes prices
    caps: Mapping[str, bool] = field(
        default_factory=lambda: NO_CAPS
    )  # capabilities the format states, on/off


@frozen
class Page:
    models: tuple[ListedModel, ...]
    cursor: str | None = None  # where the next page starts; None on the last page


@frozen
class ListingFormat:
    """One listing API: where its first page is, how it authenticates, how it pages, how a page parses."""

    url: Callable[[str], str]  # base_url -> listing URL
    headers: Headers  # API key (or None) -> request headers
    parse: Callable[[JSON], Page]
    page_query: Callable[[str | None, int | None], dict[str, str]] = field(
        default=lambda cursor, size: {}  # single page
    )


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def joined(path: str) -> Callable[[str], str]:
    return lambda base_url: base_url.rstrip("/") + path


def obj(value: JSON, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ListingError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def arr(value: JSON, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ListingError(f"{where}: expected an array, got {type(value).__name__}")
    return value


def text(value: JSON, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ListingError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def opt_text(value: JSON, where: str) -> str | None:
    return None if value is None else text(value, where)


def opt_int(value: JSON, where: str) -> int | None:
    """A positive token count, or None. JSON numbers like 8192.0 are accepted; 0 means "not stated"."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != int(value):
        raise ListingError(f"{where}: expected a whole number of tokens, got {value!r}")
    return int(value) or None


def decimal(value: JSON, where: str) -> Decimal:
    """A JSON number or decimal string as an exact `Decimal` (a float through its shortest repr)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ListingError(f"{where}: expected a number, got {value!r}")
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ListingError(f"{where}: not a number: {value!r}") from None
    if not d.is_finite():
        raise ListingError(f"{where}: not a finite number: {value!r}")
    return d


def items(data: JSON, key: str | None, where: str) -> list[dict[str, Any]]:
    """The model entries: `data[key]` (or `data` itself when key is None), each an object."""
    raw = arr(data if key is None else obj(data, where).get(key), f"{where}.{key}" if key else where)
    return [obj(m, f"{where}[{i}]") for i, m in enumerate(raw)]
