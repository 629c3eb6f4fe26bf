"""The synced state over the shipped catalog: synced prices, offerings sync added, retirements.

`apply_state` is pure given the store's rows; `overlay` reads them from an open store first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from faregate.catalog.model import Catalog, Offering, Price
from faregate.catalog.reconcile import OfferingRow, on_caps
from faregate.catalog.store import CatalogStore
from faregate.db import open_db, store_exists
from faregate.values import frozen

if TYPE_CHECKING:
    import sqlite_utils  # the store is opened by faregate/db, which imports it (without numpy)

DEFAULT_CONTEXT = 8192  # an added offering whose listing states no context (and no other provider does)


@frozen
class StoreState:
    rows: tuple[OfferingRow, ...]
    prices: Mapping[tuple[str, str], Price]  # current synced prices by (provider, upstream_id)


def read_state(db: sqlite_utils.Database) -> StoreState:
    store = CatalogStore(db)
    return StoreState(tuple(store.offerings()), MappingProxyType(store.current_prices()))


def overlay(catalog: Catalog, db: sqlite_utils.Database) -> Catalog:
    return apply_state(catalog, read_state(db))


def overlay_file(catalog: Catalog, path: Path) -> Catalog:
    """`overlay` from the store at `path`; a store that does not exist yet adds nothing (and is not made)."""
    if not store_exists(path):
        return catalog
    db = open_db(path)
    try:
        return overlay(catalog, db)
    finally:
        db.close()


def apply_state(catalog: Catalog, state: StoreState) -> Catalog:
    rows = {(r.provider, r.upstream_id): r for r in state.rows}
    offerings: list[Offering] = []
    matched: set[tuple[str, str]] = set()
    for o in catalog.offerings:
        at = (o.provider, o.upstream_id)
        row = rows.get(at)
        if row is None and at not in state.prices:
            offerings.append(o)
            continue
        matched.add(at)
        offerings.append(_updated(o, row, state.prices.get(at)))
    keys = {o.key for o in offerings}
    for at, row in rows.items():
        if at in matched or row.model_id is None or (row.model_id, row.provider) in keys:
            continue
        keys.add((row.model_id, row.provider))
        offerings.append(_added(row, state.prices.get(at)))
    return replace(catalog, offerings=tuple(offerings))


def with_cache_prices(synced: Price, declared: Price | None) -> Price:
    """A listing that publishes no cache prices keeps the declared ones."""
    if declared is None:
        return synced
    return replace(
        synced,
        cached_input=synced.cached_input if synced.cached_input is not None else declared.cached_input,
        cache_write=synced.cache_write if synced.cache_write is not None else declared.cache_write,
    )


def _updated(o: Offering, row: OfferingRow | None, price: Price | None) -> Offering:
    """A sync that saw the offering leave its listing retires it from that date (a shipped mark stays)."""
    left = row.retired_at[:10] if row is not None and row.retired_at is not None and not o.retired else None
    return replace(
        o,
        price=o.price if price is None else with_cache_prices(price, o.price),
        context=(row.context if row is not None else None) or o.context,
        caps=o.caps | (on_caps(row.caps) if row is not None else frozenset()),
        synced_price=price if price is not None else o.synced_price,
        retired=o.retired or left is not None,
        retired_on=left or o.retired_on,
        retired_by="sync" if left else o.retired_by,
    )


def _added(row: OfferingRow, price: Price | None) -> Offering:
    assert row.model_id is not None
    return Offering(
        model_id=row.model_id,
        provider=row.provider,
        upstream_id=row.upstream_id,
        kind=row.kind or "chat",
        price=price,
        context=row.context or DEFAULT_CONTEXT,
        caps=on_caps(row.caps),
        name=row.name,
        synced_price=price,
        retired=row.retired_at is not None,
        retired_on=None if row.retired_at is None else row.retired_at[:10],
        retired_by=None if row.retired_at is None else "sync",
    )


__all__ = ["StoreState", "apply_state", "overlay", "overlay_file", "read_state"]
