"""Merge routes.yaml's `providers:` and `models:` over the catalog: the offerings this gateway knows.

Pure: problems come back as `Problem`s (a path inside routes.yaml and a message) for the caller to place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from faregate.catalog.model import Catalog, Offering, Price, ProviderInfo
from faregate.config.load import PathElem
from faregate.config.model import OfferingPatch, ProviderPatch, RoutesSpec


@dataclass(frozen=True, slots=True)
class Problem:
    path: tuple[PathElem, ...]
    message: str
    at_value: bool = False


@dataclass(frozen=True, slots=True)
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
        merged, problem = _offering(
            p, offerings.get((p.model_id, p.provider)), spec.model_names.get(p.model_id)
        )
        if problem:
            problems.append(problem)
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
    )


def _offering(
    p: OfferingPatch, base: Offering | None, name: str | None
) -> tuple[Offering | None, Problem | None]:
    if base is None:
        if p.upstream_id is None or p.context is None:
            missing = " and ".join(f for f, v in (("id", p.upstream_id), ("context", p.context)) if v is None)
            return None, Problem(
                p.path, f"'{p.model_id}' at '{p.provider}' is not in the catalog: give {missing}"
            )
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
    )
    if merged.price is None:
        return merged, Problem(
            p.path,
            f"'{p.model_id}' at '{p.provider}' has no price: give input and output (USD per 1M tokens)",
        )
    return merged, None


def by_model(offerings: Iterable[Offering]) -> dict[str, list[Offering]]:
    out: dict[str, list[Offering]] = {}
    for o in offerings:
        out.setdefault(o.model_id, []).append(o)
    return out
