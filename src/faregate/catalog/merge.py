"""Merge routes.yaml's `providers:` and `models:` over the catalog: the offerings this gateway knows.

Pure: problems come back as `Problem`s (a path inside routes.yaml and a message) for the caller to place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Literal

from faregate.catalog.model import Catalog, Offering, Price, ProviderInfo
from faregate.config.load import PathElem
from faregate.config.model import OfferingPatch, ProviderPatch, RoutesSpec
from faregate.values import frozen

Severity = Literal["error", "warning"]


@frozen
class Problem:
    """An error is a mistake in routes.yaml itself (the file is refused); a warning is what the catalog
    or a sync says about the world (a retirement, a price drift): reported, never a reason to refuse."""

    path: tuple[PathElem, ...]
    message: str
    at_value: bool = False
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


def warning(path: tuple[PathElem, ...], message: str) -> Problem:
    return Problem(path, message, severity="warning")


def retired_text(o: Offering) -> str:
    """`was retired on 2026-02-19 (shipped catalog)`, `left groq's listing on 2026-12-03 (catalog sync)`."""
    on = f" on {o.retired_on}" if o.retired_on else ""
    if o.retired_by == "sync":
        return f"left {o.provider}'s listing{on} (catalog sync)"
    return f"was retired{on} ({'routes.yaml' if o.retired_by == 'routes.yaml' else 'shipped catalog'})"


@frozen
class Merged:
    providers: Mapping[str, ProviderInfo]  # configured and enabled
    offerings: tuple[Offering, ...]  # of those providers, catalog + declared
    problems: tuple[Problem, ...]


def merge(spec: RoutesSpec, catalog: Catalog) -> Merged:
    problems: list[Problem] = []
    patches = spec.providers or {
        name: ProviderPatch(name=name, path=("providers",)) for name in catalog.providers
    }
    providers: dict[str, ProviderInfo] = {}
    for name, patch in patches.items():
        info = _provider(patch, catalog.providers.get(name))
        if info is None:
            problems.append(
                Problem(
                    patch.path, f"unknown provider '{name}': not in the catalog, so give api and base_url"
                )
            )
        elif patch.enabled:
            providers[name] = info
    known = {name for name in patches}
    offerings = {o.key: o for o in catalog.offerings if o.provider in providers}
    for p in spec.offerings:
        if p.provider not in known:
            problems.append(Problem(p.path, f"unknown provider '{p.provider}' (not under providers:)"))
            continue
        if p.provider not in providers:
            continue  # disabled
        merged, found = _offering(
            p, offerings.get((p.model_id, p.provider)), spec.model_names.get(p.model_id)
        )
        problems += found
        if merged:
            offerings[merged.key] = merged
    return Merged(providers, tuple(offerings.values()), tuple(problems))


def _provider(patch: ProviderPatch, base: ProviderInfo | None) -> ProviderInfo | None:
    if base is None:
        if patch.api is None or patch.base_url is None:
            return None
        base = ProviderInfo(patch.name, patch.api, patch.base_url, (), "deny")
    return replace(
        base,
        api=patch.api or base.api,
        base_url=patch.base_url or base.base_url,
        api_key_env=base.api_key_env if patch.api_key_env is None else patch.api_key_env,
        data_collection=patch.data_collection or base.data_collection,
        listing=patch.listing or base.listing,
        params=base.params if patch.params is None else patch.params,
    )


def _offering(
    p: OfferingPatch, base: Offering | None, name: str | None
) -> tuple[Offering | None, list[Problem]]:
    if base is None:
        if p.upstream_id is None or p.context is None:
            missing = " and ".join(f for f, v in (("id", p.upstream_id), ("context", p.context)) if v is None)
            return None, [
                Problem(p.path, f"'{p.model_id}' at '{p.provider}' is not in the catalog: give {missing}")
            ]
        base = Offering(p.model_id, p.provider, p.upstream_id, p.kind or "chat", None, p.context)
    price = base.price
    if p.input is not None or p.output is not None or p.cached_input is not None or p.cache_write is not None:
        inp = p.input if p.input is not None else (price.input if price else None)
        out = p.output if p.output is not None else (price.output if price else None)
        if base.kind == "embedding" and out is None:
            out = Decimal(0)
        if inp is not None and out is not None:
            price = Price(
                inp,
                out,
                p.cached_input if p.cached_input is not None else (price.cached_input if price else None),
                p.cache_write if p.cache_write is not None else (price.cache_write if price else None),
            )
    caps = set(base.caps)
    for cap, on in p.caps.items():
        (caps.add if on else caps.discard)(cap)
    merged = replace(
        base,
        upstream_id=p.upstream_id or base.upstream_id,
        kind=p.kind or base.kind,
        price=price,
        context=p.context or base.context,
        max_output=p.max_output or base.max_output,
        caps=frozenset(caps),
        name=name or base.name,
        api=p.api or base.api,
        params=base.params if p.params is None else p.params,
    )
    merged, problems = _retirement(p, base, merged)
    if merged.price is None:
        problems.append(
            Problem(
                p.path,
                f"'{p.model_id}' at '{p.provider}' has no price: give input and output (USD per 1M tokens)",
            )
        )
    problems += _drift(p, base)
    return merged, problems


def _retirement(p: OfferingPatch, base: Offering, merged: Offering) -> tuple[Offering, list[Problem]]:
    """routes.yaml's word over the catalog's: `retired:` stated wins; else a declaration that gives
    `id`, `input` or `output` is routed as declared, and one that only adjusts other fields keeps the
    catalog's (or a sync's) mark. Either way the catalog's mark is reported as a warning."""
    where = f"'{p.model_id}' at '{p.provider}'"
    if p.retired is not None and p.retired is not False:
        on = p.retired if isinstance(p.retired, str) else None
        return replace(merged, retired=True, retired_on=on, retired_by="routes.yaml"), []
    if not base.retired:
        return replace(merged, retired=False, retired_on=None, retired_by=None), []
    said = retired_text(base)
    if p.retired is False or p.declares:
        stated = "retired: false" if p.retired is False else "declared"
        out = replace(merged, retired=False, retired_on=None, retired_by=None)
        return out, [warning(p.path, f"{where} {said}; routed as routes.yaml says ({stated})")]
    return merged, [
        warning(
            p.path,
            f"{where} {said}, so it is not routed: this declaration does not give id, input or output "
            "(add them, or retired: false, to route it anyway)",
        )
    ]


def _drift(p: OfferingPatch, base: Offering) -> list[Problem]:
    """A declared price that differs from what the provider's listing says (the last sync)."""
    synced = base.synced_price
    if synced is None:
        return []
    out = []
    for field, declared, listed in (("input", p.input, synced.input), ("output", p.output, synced.output)):
        if declared is not None and declared != listed:
            out.append(
                warning(
                    (*p.path, field),
                    f"'{p.model_id}' at '{p.provider}': declared {field} price {declared} differs from the "
                    f"synced listing price {listed} (USD per 1M tokens); the declared one is used",
                )
            )
    return out


def by_model(offerings: Iterable[Offering]) -> dict[str, list[Offering]]:
    out: dict[str, list[Offering]] = {}
    for o in offerings:
        out.setdefault(o.model_id, []).append(o)
    return out
