"""Merge rules of a sync (pure), the catalog tables with price history, and the overlay on the catalog."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from faregate.catalog.listing.base import ListedModel
from faregate.catalog.model import Catalog, Offering, Price, ProviderInfo
from faregate.catalog.overlay import DEFAULT_CONTEXT, StoreState, apply_state, overlay, overlay_file
from faregate.catalog.reconcile import (
    Elsewhere,
    OfferingRow,
    SyncDiff,
    canonical_id,
    elsewhere_index,
    reconcile,
)
from faregate.catalog.store import CatalogStore, SyncRun
from faregate.config.model import Listing
from faregate.db import open_db

D = Decimal
T0, T1, T2 = (
    "2026-01-01T00:00:00.000000+00:00",
    "2026-02-01T00:00:00.000000+00:00",
    "2026-03-01T00:00:00.000000+00:00",
)


def price(inp: str, out: str, cached: str | None = None) -> Price:
    return Price(D(inp), D(out), None if cached is None else D(cached))


def off(model: str, provider: str, uid: str, p: Price | None = None, **kw: Any) -> Offering:
    return Offering(model, provider, uid, kw.pop("kind", "chat"), p, kw.pop("context", 128_000), **kw)


def listed(uid: str, p: Price | None = None, **kw: Any) -> ListedModel:
    return ListedModel(uid, price=p, **kw)


def run_rules(
    provider: str,
    listing: Listing,
    models: list[ListedModel],
    known: list[Offering],
    *,
    complete: bool = True,
    stored: list[OfferingRow] = (),  # type: ignore[assignment]
    current: dict[str, Price] | None = None,
    elsewhere: dict[str, Elsewhere] | None = None,
) -> SyncDiff:
    return reconcile(
        provider,
        listing,
        models,
        complete=complete,
        known=known,
        stored={r.upstream_id: r for r in stored},
        current=current or {},
        elsewhere=elsewhere or {},
        now=T1,
    )


def kinds(diff: SyncDiff) -> list[tuple[str, str, str | None]]:
    return [(c.kind, c.upstream_id, c.model_id) for c in diff.changes]


# -- merge rules ------------------------------------------------------------------------------------------


def test_a_listing_without_prices_keeps_declared_prices() -> None:
    known = [off("openai/gpt-4o-mini", "openai", "gpt-4o-mini", price("0.15", "0.6"))]
    diff = run_rules("openai", "openai", [listed("gpt-4o-mini")], known)
    assert diff.changes == () and dict(diff.prices) == {}
    assert [(r.model_id, r.last_seen, r.retired_at) for r in diff.rows] == [("openai/gpt-4o-mini", T1, None)]


def test_a_published_price_that_differs_is_a_change_and_an_equal_one_starts_history() -> None:
    known = [
        off("a/x", "together", "a/X", price("0.2", "0.2")),
        off("b/y", "together", "b/Y", price("1", "2")),
    ]
    diff = run_rules(
        "together", "together", [listed("a/X", price("0.1", "0.2")), listed("b/Y", price("1", "2"))], known
    )
    assert kinds(diff) == [("price", "a/X", "a/x")]
    change = diff.changes[0]
    assert json.loads(change.old or "") == {"input": "0.2", "output": "0.2"}
    assert json.loads(change.new or "") == {"input": "0.1", "output": "0.2"}
    assert dict(diff.prices) == {"a/X": price("0.1", "0.2"), "b/Y": price("1", "2")}
    again = run_rules(
        "together",
        "together",
        [listed("a/X", price("0.1", "0.2"))],
        known[:1],
        stored=list(diff.rows[:1]),
        current={"a/X": price("0.1", "0.2")},
    )
    assert again.changes == () and dict(again.prices) == {}


@pytest.mark.parametrize(
    ("provider", "listing", "uid", "model_id"),
    [
        ("openrouter", "openrouter", "qwen/qwen3-8b:free", "qwen/qwen3-8b:free"),
        ("together", "together", "Qwen/Qwen2.5-72B-Instruct-Turbo", "qwen/Qwen2.5-72B-Instruct-Turbo"),
        ("openai", "openai", "gpt-7-mini", "openai/gpt-7-mini"),
        ("mistral", "openai", "magistral-medium", "mistralai/magistral-medium"),
        ("xai", "openai", "grok-5", "x-ai/grok-5"),
        ("google", "gemini", "gemini-4-flash", "google/gemini-4-flash"),
        ("groq", "openai", "some-new-model", None),
        ("ollama", "ollama", "phi4:14b", None),
        ("openai", "openai", "bad id with spaces", None),
    ],
)
def test_canonical_ids_of_new_models(provider: str, listing: Listing, uid: str, model_id: str | None) -> None:
    assert canonical_id(provider, listing, uid, {}) == model_id


def test_groq_and_ollama_keep_a_new_model_only_when_a_catalog_model_has_that_id() -> None:
    catalog = [off("meta-llama/llama-3.1-8b-instruct", "groq", "llama-3.1-8b-instant", context=131072)]
    elsewhere = elsewhere_index(catalog, "cerebras")
    assert (
        canonical_id("cerebras", "openai", "llama-3.1-8b-instant", elsewhere)
        == "meta-llama/llama-3.1-8b-instruct"
    )
    diff = run_rules(
        "cerebras", "openai", [listed("llama-3.1-8b-instant"), listed("mystery-1")], [], elsewhere=elsewhere
    )
    assert kinds(diff) == [("added", "llama-3.1-8b-instant", "meta-llama/llama-3.1-8b-instruct")]
    assert diff.rows[0].context == 131072  # lent by the other provider's offering
    assert diff.unmapped == ("mystery-1",)
    assert [r.model_id for r in diff.rows] == [
        "meta-llama/llama-3.1-8b-instruct",
        None,
    ]  # unmapped is recorded


def test_a_new_model_without_a_price_is_known_but_reported_unpriced() -> None:
    diff = run_rules("openai", "openai", [listed("gpt-7"), listed("text-embedding-4")], [])
    assert kinds(diff) == [
        ("added", "gpt-7", "openai/gpt-7"),
        ("added", "text-embedding-4", "openai/text-embedding-4"),
    ]
    assert diff.unpriced == ("openai/gpt-7", "openai/text-embedding-4")
    assert [r.kind for r in diff.rows] == ["chat", "embedding"] and dict(diff.prices) == {}


def test_a_new_id_for_a_model_already_served_here_is_not_a_second_offering() -> None:
    known = [off("openai/gpt-4o", "openrouter", "openai/gpt-4o-2024-08-06", price("2.5", "10"))]
    diff = run_rules(
        "openrouter",
        "openrouter",
        [listed("openai/gpt-4o-2024-08-06"), listed("openai/gpt-4o", price("2.5", "10"))],
        known,
    )
    assert diff.unmapped == ("openai/gpt-4o",) and kinds(diff) == []


def test_disappeared_models_are_retired_not_deleted() -> None:
    known = [
        off("openai/gpt-4o", "openai", "gpt-4o", price("2.5", "10")),
        off("openai/gpt-4o-mini", "openai", "gpt-4o-mini", price("0.15", "0.6")),
        off("openai/o4-mini", "openai", "o4-mini", price("1.1", "4.4"), retired=True),  # shipped retired
    ]
    stored = [OfferingRow("openai", "gpt-9", "openai/gpt-9", first_seen=T0, last_seen=T0)]
    diff = run_rules("openai", "openai", [listed("gpt-4o")], known, stored=stored)
    assert kinds(diff) == [
        ("retired", "gpt-4o-mini", "openai/gpt-4o-mini"),
        ("retired", "gpt-9", "openai/gpt-9"),
    ]
    assert {r.upstream_id: r.retired_at for r in diff.rows} == {
        "gpt-4o": None,
        "gpt-4o-mini": T1,
        "gpt-9": T1,
    }


def test_a_retired_model_that_is_listed_again_returns() -> None:
    known = [off("openai/gpt-4o", "openai", "gpt-4o", price("2.5", "10"), retired=True)]
    stored = [OfferingRow("openai", "gpt-4o", "openai/gpt-4o", first_seen=T0, last_seen=T0, retired_at=T0)]
    diff = run_rules("openai", "openai", [listed("gpt-4o")], known, stored=stored)
    assert kinds(diff) == [("returned", "gpt-4o", "openai/gpt-4o")]
    assert diff.rows[0].retired_at is None and diff.rows[0].first_seen == T0


def test_a_partial_listing_adds_but_changes_and_retires_nothing() -> None:
    known = [
        off("a/x", "together", "a/X", price("0.2", "0.2")),
        off("b/y", "together", "b/Y", price("1", "2")),
    ]
    diff = run_rules(
        "together",
        "together",
        [listed("a/X", price("9", "9")), listed("c/Z", price("0.1", "0.1"))],
        known,
        complete=False,
    )
    assert kinds(diff) == [("added", "c/Z", "c/Z")]
    assert dict(diff.prices) == {"c/Z": price("0.1", "0.1")} and [r.upstream_id for r in diff.rows] == ["c/Z"]


def test_context_changes_and_new_capabilities_are_changes() -> None:
    known = [
        off("openai/gpt-4o", "openrouter", "openai/gpt-4o", price("2.5", "10"), caps=frozenset({"tools"}))
    ]
    caps = MappingProxyType({"tools": True, "json": True, "vision": False})
    diff = run_rules(
        "openrouter",
        "openrouter",
        [listed("openai/gpt-4o", price("2.5", "10"), context=256_000, caps=caps)],
        known,
    )
    assert kinds(diff) == [
        ("context", "openai/gpt-4o", "openai/gpt-4o"),
        ("caps", "openai/gpt-4o", "openai/gpt-4o"),
    ]
    assert (diff.changes[0].old, diff.changes[0].new) == ("128000", "256000")
    assert json.loads(diff.changes[1].new or "") == [
        "json",
        "tools",
    ]  # listings add capabilities, never remove


# -- store --------------------------------------------------------------------------------------------------


def test_price_history_closes_the_old_interval_and_opens_a_new_one(tmp_path: Path) -> None:
    store = CatalogStore(open_db(tmp_path / "s.db"))
    CatalogStore(store.db)  # tables are created idempotently
    known = [off("a/x", "together", "a/X", price("0.2", "0.2"))]
    first = run_rules("together", "together", [listed("a/X", price("0.2", "0.2"))], known)
    store.commit_sync("together", first, SyncRun("together", T0, T0, "ok", 1))
    second = reconcile(
        "together",
        "together",
        [listed("a/X", price("0.1", "0.15"))],
        complete=True,
        known=known,
        stored={r.upstream_id: r for r in store.offerings("together")},
        current={u: p for (_, u), p in store.current_prices("together").items()},
        elsewhere={},
        now=T1,
    )
    run_id = store.commit_sync("together", second, SyncRun("together", T1, T1, "ok", 1, changed=1))
    history = store.history("together", "a/X")
    assert [(h.price, h.valid_from, h.valid_to) for h in history] == [
        (price("0.2", "0.2"), T0, T1),
        (price("0.1", "0.15"), T1, None),
    ]
    assert store.price_at("together", "a/X", "2025-12-31T00:00:00.000000+00:00") is None
    assert store.price_at("together", "a/X", T0) == price("0.2", "0.2")
    assert store.price_at("together", "a/X", T1) == price("0.1", "0.15")
    assert store.price_at("together", "a/X", T2) == price("0.1", "0.15")
    assert [(c.kind, c.upstream_id) for c in store.changes(run_id)] == [("price", "a/X")]
    raw = store.db.execute("SELECT input, output FROM prices ORDER BY id").fetchall()
    assert raw == [("0.2", "0.2"), ("0.1", "0.15")]  # decimal text, never floats
    assert store.offerings("together")[0].first_seen == T1  # first seen by the first commit's `now`


def test_runs_are_recorded_and_the_last_per_provider_is_found(tmp_path: Path) -> None:
    store = CatalogStore(open_db(tmp_path / "s.db"))
    store.record_run(SyncRun("openai", T0, T0, "ok", 3))
    failed = store.record_run(SyncRun("openai", T1, T1, "failed", error="HTTP 500"))
    store.record_run(SyncRun("groq", T1, T1, "partial", 2, error="page 2: timeout"))
    last = store.last_runs()
    assert (last["openai"].id, last["openai"].status, last["openai"].error) == (failed, "failed", "HTTP 500")
    assert last["groq"].status == "partial" and store.last_ok() == {"openai": T0}


# -- overlay ------------------------------------------------------------------------------------------------


def catalog(*offerings: Offering) -> Catalog:
    info = ProviderInfo("openrouter", "openai", "https://openrouter.ai/api/v1", ("K",), "deny", "openrouter")
    return Catalog(MappingProxyType({"openrouter": info}), offerings)


def test_overlay_applies_synced_prices_new_offerings_and_retirements() -> None:
    shipped = catalog(
        off(
            "openai/gpt-4o",
            "openrouter",
            "openai/gpt-4o",
            price("2.5", "10", "1.25"),
            caps=frozenset({"vision"}),
        ),
        off("openai/gpt-4o-mini", "openrouter", "openai/gpt-4o-mini", price("0.15", "0.6")),
        off("x/same", "openrouter", "x/same", price("1", "1")),
    )
    rows = (
        OfferingRow(
            "openrouter",
            "openai/gpt-4o",
            "openai/gpt-4o",
            context=256_000,
            caps=MappingProxyType({"tools": True, "vision": False}),
        ),
        OfferingRow("openrouter", "openai/gpt-4o-mini", "openai/gpt-4o-mini", retired_at=T1),
        OfferingRow("openrouter", "acme/new", "acme/new", "Acme New", "chat", None),
        OfferingRow("openrouter", "acme/free", "acme/free", context=4096),
        OfferingRow("openrouter", "weird", None),  # listed but unmapped: not an offering
        OfferingRow("openrouter", "x/same-2", "x/same"),  # would collide with a shipped offering's key
    )
    prices = {
        ("openrouter", "openai/gpt-4o"): price("2", "8"),
        ("openrouter", "acme/new"): price("0.01", "0.02"),
    }
    out = {
        o.upstream_id: o for o in apply_state(shipped, StoreState(rows, MappingProxyType(prices))).offerings
    }
    assert set(out) == {"openai/gpt-4o", "openai/gpt-4o-mini", "x/same", "acme/new", "acme/free"}
    gpt4o = out["openai/gpt-4o"]
    assert gpt4o.price == price("2", "8", "1.25")  # no cache price published: the declared one stays
    assert gpt4o.context == 256_000 and gpt4o.caps == {"vision", "tools"}
    assert out["openai/gpt-4o-mini"].retired and out["openai/gpt-4o-mini"].price == price("0.15", "0.6")
    new = out["acme/new"]
    assert (new.model_id, new.price, new.context, new.name, new.retired) == (
        "acme/new",
        price("0.01", "0.02"),
        DEFAULT_CONTEXT,
        "Acme New",
        False,
    )
    assert out["acme/free"].price is None  # known, not routable


def test_overlay_reads_the_store_and_a_missing_store_is_not_created(tmp_path: Path) -> None:
    shipped = catalog(off("openai/gpt-4o", "openrouter", "openai/gpt-4o", price("2.5", "10")))
    assert overlay_file(shipped, tmp_path / "none.db") is shipped and not (tmp_path / "none.db").exists()
    db = open_db(tmp_path / "s.db")
    store = CatalogStore(db)
    diff = run_rules(
        "openrouter", "openrouter", [listed("openai/gpt-4o", price("3", "12"))], list(shipped.offerings)
    )
    store.commit_sync("openrouter", diff, SyncRun("openrouter", T1, T1, "ok", 1, changed=1))
    assert overlay(shipped, db).offerings[0].price == price("3", "12")
    assert overlay_file(shipped, tmp_path / "s.db").offerings[0].price == price("3", "12")
