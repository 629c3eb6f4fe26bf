"""Read the shipped catalog snapshot: one YAML file per provider in `catalog/`, validated by its schema."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

from faregate.catalog.model import Catalog, Offering, Price, ProviderInfo
from faregate.config.build import money, opt_money
from faregate.config.load import ConfigIssue, load_yaml
from faregate.config.validate import schema_issues

CAPS = ("tools", "vision", "json", "streaming")


def load_catalog_dir(folder: Path) -> tuple[Catalog, list[ConfigIssue]]:
    """Every `*.yaml` in `folder`, in name order. A bad file is reported and skipped; the rest load."""
    providers: dict[str, ProviderInfo] = {}
    offerings: list[Offering] = []
    issues: list[ConfigIssue] = []
    for path in sorted(folder.glob("*.yaml")):
        doc, errs = load_yaml(path)
        if doc is None:
            issues += errs
            continue
        data, errs = schema_issues(doc, "catalog")
        if errs:
            issues += errs
            continue
        info, offs = parse_catalog_file(data)
        if info.name != path.stem:
            issues.append(
                doc.issue(["provider"], f"provider '{info.name}' must match the file name '{path.stem}'")
            )
            continue
        providers[info.name] = info
        offerings += offs
    return Catalog(MappingProxyType(providers), tuple(offerings)), issues


def parse_catalog_file(data: dict[str, Any]) -> tuple[ProviderInfo, list[Offering]]:
    keys = data.get("api_key_env")
    source = data.get("source") or {}
    info = ProviderInfo(
        name=data["provider"],
        api=data["api"],
        base_url=data["base_url"],
        api_key_env=() if keys is None else ((keys,) if isinstance(keys, str) else tuple(keys)),
        data_collection=data["data_collection"],
        listing=data.get("listing"),
        free=bool(data.get("free", False)),
        source_url=source.get("url"),
        source_taken=None if source.get("taken") is None else str(source["taken"]),
        params=frozenset(data.get("params", ())),
    )
    offerings = [
        Offering(
            model_id=model_id,
            provider=info.name,
            upstream_id=o["id"],
            kind=o.get("kind", "chat"),
            price=Price(
                money(o["input"]),
                money(o.get("output", 0)),
                opt_money(o.get("cached_input")),
                opt_money(o.get("cache_write")),
            ),
            context=o["context"],
            max_output=o.get("max_output"),
            caps=frozenset(c for c in CAPS if o.get(c)),
            name=o.get("name"),
            retired="retired" in o,
            aliases=tuple(o.get("aliases", ())),
            retired_on=None if o.get("retired") is None else str(o["retired"]),
            retired_by="catalog" if "retired" in o else None,
            replacement=o.get("replacement"),
            api=o.get("api"),
            params=None if o.get("params") is None else frozenset(o["params"]),
        )
        for model_id, o in data["offerings"].items()
    ]
    return info, offerings
