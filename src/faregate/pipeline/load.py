"""The one loader: routes.yaml + catalog folder (+ the store's synced state) → spec → merged offerings →
compiled table, as one immutable `Loaded`. The server (start and every reload), the command line and the
demo all load through `load`.

Every problem, wherever it is found (YAML syntax, schema, catalog files, merge, compile), comes back as a
located `ConfigIssue`; the caller keeps the old state when there is any error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import field, replace
from pathlib import Path
from types import MappingProxyType

from faregate.catalog.files import load_catalog_dir
from faregate.catalog.merge import Merged, merge
from faregate.catalog.model import Catalog
from faregate.config.build import RoutesRead, read_routes
from faregate.config.load import ConfigIssue
from faregate.config.model import RoutesSpec
from faregate.db import store_errors
from faregate.pipeline.bounds import Bounds, bounds_of
from faregate.routing.compile import compile_table
from faregate.routing.table import DecisionTable
from faregate.values import frozen


@frozen
class Sources:
    """Where the loaded state comes from: re-read on every reload."""

    routes: Path
    catalog_dir: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    base_urls: Mapping[str, str] | None = None  # demo: every provider pointed at the simulator
    store: Path | None = None  # the SQLite store whose synced catalog state overlays catalog/ (None: none)
    assume_keys: bool = False  # plan as if every provider had a key (explain, the demo's simulator)

    def mtimes(self) -> tuple[float, ...]:
        paths = [self.routes, *sorted(self.catalog_dir.glob("*.yaml"))]
        return tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in paths)


@frozen
class Loaded:
    """Everything a request reads from configuration, swapped as one value: a request takes it once and
    finishes on it (`Runtime.holder.current`)."""

    spec: RoutesSpec
    table: DecisionTable
    merged: Merged
    warnings: tuple[ConfigIssue, ...] = ()  # what the catalog says: reported, never a reason to refuse
    bounds: Bounds = field(default_factory=Bounds)  # the upstream limits of routes.yaml's `server` section

    @property
    def generation(self) -> int:
        return self.table.generation


class LoadedHolder:
    """The one mutable cell: a reload loads off to the side and swaps with one assignment. The app is frozen
    after start-up, so the swap happens here, not in `app[...]`."""

    __slots__ = ("current",)
    current: Loaded  # unset while a starting server loads its first table (`Runtime.ready` tells)

    def __init__(self, loaded: Loaded | None) -> None:
        if loaded is not None:
            self.current = loaded


@frozen
class SourcesRead:
    """The files of `Sources`, read once (a start reads them for its options, the demo's simulator and the
    first table): routes.yaml parsed, the shipped catalog, and the catalog with the store's synced state
    over it, with what was wrong in the catalog files or the store."""

    routes: RoutesRead
    shipped: Catalog
    catalog: Catalog
    issues: tuple[ConfigIssue, ...] = ()


def read_sources(sources: Sources, routes: RoutesRead | None = None) -> SourcesRead:
    """Read what `sources` name; `routes`: routes.yaml as the caller has read it already."""
    shipped, issues = load_catalog_dir(sources.catalog_dir)
    catalog = shipped
    if sources.store is not None:
        try:
            catalog = _synced(shipped, sources.store)
        except store_errors() as e:
            issues = [*issues, ConfigIssue(str(sources.store), 1, 1, f"cannot read the synced catalog: {e}")]
    return SourcesRead(routes or read_routes(sources.routes), shipped, catalog, tuple(issues))


def load(
    sources: Sources, *, generation: int = 0, read: SourcesRead | None = None
) -> tuple[Loaded | None, list[ConfigIssue], list[ConfigIssue]]:
    """(the loaded state or None, errors, warnings): the catalog folder, the store's synced state over it,
    routes.yaml over both (`read`: those files as read already, else read now). `base_urls` replaces
    providers' base URLs after merging (the demo points them at the simulator). Every finding in one run:
    a broken catalog file still lets routes.yaml be checked."""
    read = read or read_sources(sources)
    loaded, errors, warnings = build_loaded(
        read.routes,
        read.catalog,
        sources.env,
        generation=generation,
        base_urls=sources.base_urls,
        assume_keys=sources.assume_keys,
    )
    return (None if read.issues else loaded), [*read.issues, *errors], warnings


def _synced(catalog: Catalog, store: Path) -> Catalog:
    from faregate.catalog.overlay import overlay_file  # sqlite-utils: only when there is a store

    return overlay_file(catalog, store)


def build_loaded(
    read: RoutesRead,
    catalog: Catalog,
    env: Mapping[str, str],
    *,
    generation: int = 0,
    base_urls: Mapping[str, str] | None = None,
    assume_keys: bool = False,
) -> tuple[Loaded | None, list[ConfigIssue], list[ConfigIssue]]:
    """Every finding in one run: (the table or None, errors, warnings). With schema errors the semantic
    checks still run over the part of the file that validated; a name whose definition was dropped
    is not reported again where it is used."""
    if read.spec is None or read.doc is None:
        return None, read.issues, []
    spec, doc = read.spec, read.doc
    merged = merge(spec, catalog)
    if base_urls:
        providers = {
            n: replace(p, base_url=base_urls.get(n, p.base_url)) for n, p in merged.providers.items()
        }
        merged = replace(merged, providers=MappingProxyType(providers))
    compiled = compile_table(spec, merged, env, generation=generation, assume_keys=assume_keys)
    errors, warnings = set(read.issues), set()
    for p in compiled.problems:
        issue = doc.issue(p.path, p.message, at_value=p.at_value)
        if not p.is_error:
            warnings.add(replace(issue, warning=True))
        elif not read.follows_on(p.path, p.message):
            errors.add(issue)
    if errors or not read.complete:
        return None, sorted(errors), sorted(warnings)
    loaded = Loaded(spec, compiled.table, merged, tuple(sorted(warnings)), bounds_of(spec.server))
    return loaded, [], sorted(warnings)


def summary(loaded: Loaded) -> str:
    """One line for `faregate check`: what the file and the catalog add up to, and what is live here."""
    t = loaded.table
    providers = {c.provider for c in t.channels.values()} | set(t.inactive)
    live = {(c.model_id, c.provider) for c in t.channels.values()}
    return (
        f"{_n(len(providers), 'provider')} ({len(t.inactive)} without a key), {_n(len(t.known), 'model')}, "
        f"{_n(t.offerings, 'offering')} ({len(live)} routable with the keys set here), "
        f"{_n(len(t.routes), 'route')}, {_n(len(t.aliases), 'alias', 'aliases')}"
    )


def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"
