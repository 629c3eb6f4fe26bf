"""Write the synced catalog back to `catalog/*.yaml` in the shipped format, keeping comments and layout.

Round trip with ruamel.yaml: values that sync changed are updated in place, offerings sync added are
appended, retirements get a `retired:` date citing the listing endpoint they were seen missing from. Unpriced offerings cannot be written (the schema needs a price).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from faregate.catalog.listing.fetch import FORMATS
from faregate.catalog.model import Catalog, Offering, Price

CAPS = ("tools", "vision", "json", "streaming")


@dataclass(slots=True)
class ExportReport:
    written: list[Path] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # "provider model: what"
    skipped: list[str] = field(default_factory=list)  # offerings that cannot be written, and why


def yaml_rt() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long lines
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def number(d: Decimal) -> int | float:
    """A price as a YAML number that reads back as the same Decimal (files are read via float repr)."""
    return int(d) if d == d.to_integral_value() else float(d)


def export_catalog(
    folder: Path,
    out: Path,
    shipped: Catalog,
    synced: Catalog,
    retired_on: Mapping[tuple[str, str], str],
) -> ExportReport:
    """Each `folder/<provider>.yaml` -> `out/<provider>.yaml` with `synced`'s differences from `shipped`.
    `retired_on`: (provider, upstream_id) -> the YYYY-MM-DD date sync saw the offering go."""
    report = ExportReport()
    yaml = yaml_rt()
    out.mkdir(parents=True, exist_ok=True)
    before = {o.key: o for o in shipped.offerings}
    for path in sorted(folder.glob("*.yaml")):
        doc = yaml.load(path.read_text(encoding="utf-8"))
        provider = doc["provider"]
        entries: CommentedMap = doc["offerings"]
        listing = listing_url(doc)
        for o in (o for o in synced.offerings if o.provider == provider):
            when = retired_on.get((o.provider, o.upstream_id))
            old = before.get(o.key)
            if old is not None and o.model_id in entries:
                what = _update(entries[o.model_id], old, o, when, listing)
            elif o.price is None:
                report.skipped.append(
                    f"{provider} {o.model_id}: no price anywhere (add it to routes.yaml models:)"
                )
                continue
            else:
                entries[o.model_id] = _entry(o, when, listing)
                what = ["added"]
            report.updated += [f"{provider} {o.model_id}: {w}" for w in what]
        target = out / path.name
        with target.open("w", encoding="utf-8") as f:
            yaml.dump(doc, f)
        report.written.append(target)
    return report


def listing_url(doc: Mapping[str, Any]) -> str:
    """The provider's listing endpoint: the source of a retirement that sync saw."""
    base = str(doc.get("base_url") or "")
    fmt = FORMATS.get(doc.get("listing"))  # type: ignore[arg-type]  # a YAML string, maybe absent
    return fmt.url(base) if fmt is not None and base else base


def mark_retired(entry: CommentedMap, retired_on: str, listing: str) -> None:
    """`retired: "DATE"  # source: <listing> (...)`: every mark in the catalog says where it comes from."""
    entry["retired"] = DoubleQuotedScalarString(retired_on)
    entry.yaml_add_eol_comment(
        f"# source: {listing} (gone from the provider's listing on {retired_on}: faregate catalog sync)",
        "retired",
    )


def _update(entry: Any, old: Offering, new: Offering, retired_on: str | None, listing: str) -> list[str]:
    what = []
    if new.price is not None and new.price != old.price:
        for name, value in _price_fields(new.price).items():
            entry[name] = number(value)
        what.append(f"price {_show(old.price)} -> {_show(new.price)}")
    if new.context != old.context:
        entry["context"] = new.context
        what.append(f"context {old.context} -> {new.context}")
    for cap in sorted(new.caps - old.caps):
        entry[cap] = True
        what.append(f"{cap}: true")
    if new.retired and "retired" not in entry and retired_on:
        mark_retired(entry, retired_on, listing)
        what.append(f"retired {retired_on}")
    return what


def _entry(o: Offering, retired_on: str | None, listing: str) -> CommentedMap:
    assert o.price is not None
    entry = CommentedMap({"id": o.upstream_id})
    if o.name:
        entry["name"] = o.name
    if o.kind != "chat":
        entry["kind"] = o.kind
    entry.update({k: number(v) for k, v in _price_fields(o.price).items()})
    entry["context"] = o.context
    entry.update({cap: True for cap in CAPS if cap in o.caps})
    if o.retired and retired_on:
        mark_retired(entry, retired_on, listing)
    return entry


def _price_fields(p: Price) -> dict[str, Decimal]:
    fields = {
        "input": p.input,
        "output": p.output,
        "cached_input": p.cached_input,
        "cache_write": p.cache_write,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _show(p: Price | None) -> str:
    return "none" if p is None else f"{p.input}/{p.output}"
