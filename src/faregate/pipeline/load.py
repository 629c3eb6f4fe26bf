"""From files to a decision table: routes.yaml + catalog → spec → merged offerings → compiled table.

Every problem, wherever it is found (YAML syntax, schema, merge, compile), comes back as a located
`ConfigIssue`; the caller keeps the old table when there is any.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from faregate.catalog.merge import Merged, merge
from faregate.catalog.model import Catalog
from faregate.config.build import read_routes
from faregate.config.load import ConfigIssue
from faregate.config.model import RoutesSpec
from faregate.routing.compile import compile_table
from faregate.routing.table import DecisionTable


@dataclass(frozen=True, slots=True)
class Loaded:
    spec: RoutesSpec
    table: DecisionTable
    merged: Merged
    warnings: tuple[ConfigIssue, ...] = ()  # what the catalog says: reported, never a reason to refuse


def load_table(
    routes: Path,
    catalog: Catalog,
    env: Mapping[str, str],
    *,
    generation: int = 0,
    base_urls: Mapping[str, str] | None = None,
    assume_keys: bool = False,
) -> tuple[Loaded | None, list[ConfigIssue]]:
    """`base_urls` replaces providers' base URLs after merging (the demo points them at the simulator);
    `assume_keys` plans as if every provider had a key (explain, benchmarks). The issues are errors
    only: warnings ride on `Loaded.warnings`."""
    loaded, errors, _ = load_checked(
        routes, catalog, env, generation=generation, base_urls=base_urls, assume_keys=assume_keys
    )
    return loaded, errors


def load_checked(
    routes: Path,
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
    read = read_routes(routes)
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
    return Loaded(spec, compiled.table, merged, tuple(sorted(warnings))), [], sorted(warnings)


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
