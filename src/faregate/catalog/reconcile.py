"""The merge rules of a sync: one provider's listing against what is known, as rows to write and changes.

Pure: the listing, the provider's known offerings (catalog + store + routes.yaml) and its stored rows in;
a `SyncDiff` out. A partial listing may add new offerings but changes and retires nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field, replace
from types import MappingProxyType
from typing import Final, Literal

from faregate.catalog.listing.base import ListedModel
from faregate.catalog.model import Kind, Offering, Price
from faregate.config.model import Listing
from faregate.values import frozen

# Who authors the models a first-party provider lists, for `<author>/<upstream id>` model ids.
AUTHORS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "openai": "openai",
        "anthropic": "anthropic",
        "google": "google",
        "mistral": "mistralai",
        "deepseek": "deepseek",
        "xai": "x-ai",
    }
)
NAMESPACED: Final[frozenset[Listing]] = frozenset({"openrouter", "together"})  # ids are author/name
MODEL_ID: Final = re.compile(r"^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:-]*$")  # as in the schemas

ChangeKind = Literal["added", "price", "context", "caps", "retired", "returned"]
COUNTED_AS_CHANGED: Final[frozenset[str]] = frozenset({"price", "context", "caps", "returned"})


@frozen
class OfferingRow:
    """A row of the store's `offerings`: what sync saw of (provider, upstream_id). model_id None: unmapped."""

    provider: str
    upstream_id: str
    model_id: str | None
    name: str | None = None
    kind: Kind | None = None
    context: int | None = None
    caps: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    first_seen: str | None = None
    last_seen: str | None = None
    retired_at: str | None = None


@frozen
class Change:
    kind: ChangeKind
    upstream_id: str
    model_id: str | None
    old: str | None = None  # prices as JSON text, context as a number, caps as a sorted list
    new: str | None = None


@frozen
class SyncDiff:
    rows: tuple[OfferingRow, ...]  # to write, replacing the provider's row of the same upstream id
    prices: Mapping[str, Price]  # upstream id -> price that becomes current (the old interval closes)
    changes: tuple[Change, ...]
    unmapped: tuple[str, ...]  # listed upstream ids with no model id
    unpriced: tuple[str, ...]  # model ids added with no price anywhere: known, not routable

    def count(self, *kinds: str) -> int:
        return sum(1 for c in self.changes if c.kind in kinds)


@frozen
class Elsewhere:
    """An offering of another provider with the same upstream id: names the model, lends its context."""

    model_id: str
    context: int


def price_json(price: Price | None) -> str | None:
    if price is None:
        return None
    fields = {
        "input": price.input,
        "output": price.output,
        "cached_input": price.cached_input,
        "cache_write": price.cache_write,
    }
    return json.dumps({k: plain(v) for k, v in fields.items() if v is not None})


def plain(d: object) -> str:
    """A Decimal as exact fixed-point text without trailing zeros: 0.15000 -> "0.15", 1E+2 -> "100"."""
    s = format(d, "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


def same_price(old: Price | None, new: Price) -> bool:
    """Equal on what the listing states: input, output, and cache prices where it gives them."""
    return (
        old is not None
        and old.input == new.input
        and old.output == new.output
        and (new.cached_input is None or new.cached_input == old.cached_input)
        and (new.cache_write is None or new.cache_write == old.cache_write)
    )


def elsewhere_index(offerings: Iterable[Offering], provider: str) -> dict[str, Elsewhere]:
    """Upstream id -> model of other providers' offerings, where that id names one model only."""
    found: dict[str, set[tuple[str, int]]] = {}
    for o in offerings:
        if o.provider != provider:
            found.setdefault(o.upstream_id, set()).add((o.model_id, o.context))
    return {u: Elsewhere(*next(iter(ms))) for u, ms in found.items() if len({m for m, _ in ms}) == 1}


def canonical_id(
    provider: str, listing: Listing, upstream_id: str, elsewhere: Mapping[str, Elsewhere]
) -> str | None:
    """The model id of a listed model the catalog does not know at this provider, or None (unmapped)."""
    candidates = []
    if upstream_id in elsewhere:
        candidates.append(elsewhere[upstream_id].model_id)
    if listing in NAMESPACED and "/" in upstream_id:
        author, rest = upstream_id.split("/", 1)
        candidates.append(f"{author.lower()}/{rest}")
    if provider in AUTHORS:
        candidates.append(f"{AUTHORS[provider]}/{upstream_id}")
    return next((c for c in candidates if MODEL_ID.match(c)), None)


def guess_kind(upstream_id: str) -> Kind:
    return "embedding" if "embed" in upstream_id.lower() else "chat"


def on_caps(caps: Mapping[str, bool]) -> frozenset[str]:
    return frozenset(c for c, on in caps.items() if on)


def reconcile(
    provider: str,
    listing: Listing,
    listed: Sequence[ListedModel],
    *,
    complete: bool,
    known: Sequence[Offering],
    stored: Mapping[str, OfferingRow],
    current: Mapping[str, Price],
    elsewhere: Mapping[str, Elsewhere],
    now: str,
) -> SyncDiff:
    """`known`: the provider's offerings as merged now; `stored`/`current`: its rows and current prices."""
    by_upstream: dict[str, Offering] = {}
    for o in known:
        by_upstream.setdefault(o.upstream_id, o)
    served = {o.model_id for o in known} | {r.model_id for r in stored.values() if r.model_id}
    rows: list[OfferingRow] = []
    prices: dict[str, Price] = {}
    changes: list[Change] = []
    unmapped: list[str] = []
    unpriced: list[str] = []
    for m in listed:
        u = m.upstream_id
        row, k = stored.get(u), by_upstream.get(u)
        if k is None and (row is None or row.model_id is None):  # new to faregate (or still unmapped)
            model_id = canonical_id(provider, listing, u, elsewhere)
            if model_id in served:
                model_id = None  # that model already has an offering here under another id
            ctx = m.context or (elsewhere[u].context if u in elsewhere else None)
            rows.append(
                OfferingRow(
                    provider,
                    u,
                    model_id,
                    m.name,
                    m.kind or guess_kind(u),
                    ctx,
                    m.caps,
                    row.first_seen if row else now,
                    now,
                )
            )
            if model_id is None:
                unmapped.append(u)
                continue
            served.add(model_id)
            changes.append(Change("added", u, model_id, None, price_json(m.price) or "unpriced"))
            if m.price is not None:
                prices[u] = m.price
            else:
                unpriced.append(model_id)
            continue
        if not complete:
            continue
        model_id = k.model_id if k is not None else row.model_id if row is not None else None
        rows.append(_seen(provider, m, row, k, model_id, now))
        old_price = current.get(u) or (k.price if k is not None else None)
        if m.price is not None and not same_price(old_price, m.price):
            changes.append(Change("price", u, model_id, price_json(old_price), price_json(m.price)))
            prices[u] = m.price
        elif m.price is not None and u not in current:
            prices[u] = m.price  # first observation: history starts here, nothing changed
        old_context = (row.context if row is not None else None) or (k.context if k is not None else None)
        if m.context is not None and m.context != old_context:
            changes.append(Change("context", u, model_id, _num(old_context), str(m.context)))
        old_caps = k.caps if k is not None else on_caps(row.caps if row is not None else {})
        if on_caps(m.caps) - old_caps:
            changes.append(
                Change(
                    "caps",
                    u,
                    model_id,
                    json.dumps(sorted(old_caps)),
                    json.dumps(sorted(old_caps | on_caps(m.caps))),
                )
            )
        if row is not None and row.retired_at is not None:
            changes.append(Change("returned", u, model_id, row.retired_at, None))
    if complete:
        listed_ids = {m.upstream_id for m in listed}
        for gone in _disappeared(provider, known, stored, listed_ids):
            rows.append(replace(gone, retired_at=now))
            changes.append(Change("retired", gone.upstream_id, gone.model_id, None, now))
    return SyncDiff(tuple(rows), MappingProxyType(prices), tuple(changes), tuple(unmapped), tuple(unpriced))


def _seen(
    provider: str, m: ListedModel, row: OfferingRow | None, k: Offering | None, model_id: str | None, now: str
) -> OfferingRow:
    kind = (
        k.kind
        if k is not None
        else (row.kind if row is not None else None) or m.kind or guess_kind(m.upstream_id)
    )
    return OfferingRow(
        provider,
        m.upstream_id,
        model_id,
        m.name or (row.name if row is not None else None),
        kind,
        m.context or (row.context if row is not None else None),
        m.caps or (row.caps if row is not None else MappingProxyType({})),
        (row.first_seen if row is not None else None) or now,
        now,
        None,
    )


def _disappeared(
    provider: str, known: Sequence[Offering], stored: Mapping[str, OfferingRow], listed: set[str]
) -> list[OfferingRow]:
    """Known, not retired, and no longer listed: from the merged offerings and from the store's rows."""
    out: dict[str, OfferingRow] = {}
    for o in known:
        row = stored.get(o.upstream_id)
        if o.upstream_id in listed or o.upstream_id in out or (row is not None and row.retired_at):
            continue
        if o.retired and row is None:
            continue  # retired in the shipped catalog already
        out[o.upstream_id] = row or OfferingRow(provider, o.upstream_id, o.model_id, kind=o.kind)
    for row in stored.values():
        if row.model_id and row.retired_at is None and row.upstream_id not in listed:
            out.setdefault(row.upstream_id, row)
    return list(out.values())


def _num(value: int | None) -> str | None:
    return None if value is None else str(value)
