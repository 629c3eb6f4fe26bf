#!/usr/bin/env python3
"""Write docs/routes.md and docs/catalog-format.md from the JSON Schemas, so the reference never drifts
from the validation (`python scripts/schema_docs.py`; `--check` exits 1 when the docs are stale)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = {
    "routes": (ROOT / "docs" / "routes.md", "routes.yaml reference"),
    "catalog": (ROOT / "docs" / "catalog-format.md", "Catalog file reference (catalog/<provider>.yaml)"),
}


def resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = schema["$defs"][ref.removeprefix("#/$defs/")]
        return {**resolve(target, schema), **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def type_of(node: dict[str, Any], schema: dict[str, Any]) -> str:
    node = resolve(node, schema)
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    for combo in ("oneOf", "anyOf"):
        if combo in node:
            return " or ".join(type_of(alt, schema) for alt in node[combo])
    kind = node.get("type", "object")
    if kind == "array":
        return f"list of {type_of(node.get('items', {}), schema)}"
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def rows(node: dict[str, Any], schema: dict[str, Any], prefix: str, out: list[str], depth: int = 0) -> None:
    node = resolve(node, schema)
    required = set(node.get("required", ()))
    for name, child in node.get("properties", {}).items():
        child = resolve(child, schema)
        path = f"{prefix}.{name}" if prefix else name
        desc = (child.get("description") or "").replace("|", "\\|").replace("\n", " ")
        default = f" Default `{child['default']}`." if "default" in child else ""
        req = " **required**" if name in required else ""
        out.append(f"| `{path}` | {type_of(child, schema)}{req} | {desc}{default} |")
        if depth < 4:
            rows(child, schema, path, out, depth + 1)
            extra = child.get("additionalProperties")
            if not (isinstance(extra, dict) and extra) and child.get("patternProperties"):
                extra = next(iter(child["patternProperties"].values()))  # keyed by a pattern: same shape
            if isinstance(extra, dict) and extra:
                extra = resolve(extra, schema)
                if extra.get("type") == "array":
                    rows(resolve(extra.get("items", {}), schema), schema, f"{path}.<name>[]", out, depth + 1)
                else:
                    rows(extra, schema, f"{path}.<name>", out, depth + 1)
            items = resolve(child.get("items", {}), schema) if child.get("type") == "array" else {}
            if items.get("properties"):
                rows(items, schema, f"{path}[]", out, depth + 1)
            for alt in [*child.get("oneOf", []), *child.get("anyOf", [])]:
                alt = resolve(alt, schema)
                if alt.get("properties"):
                    rows(alt, schema, path, out, depth + 1)
                alt_items = resolve(alt.get("items", {}), schema) if alt.get("type") == "array" else {}
                if alt_items.get("properties"):
                    rows(alt_items, schema, f"{path}[]", out, depth + 1)


def render(name: str) -> str:
    schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8"))
    _, title = DOCS[name]
    out = [
        f"# {title}",
        "",
        f"Generated from `schemas/{name}.schema.json` by `scripts/schema_docs.py`: the schema is the single",
        "source of validation, and this page is made from it. Do not edit by hand.",
        "",
        schema.get("description", ""),
        "",
        "| key | type | meaning |",
        "|---|---|---|",
    ]
    rows(schema, schema, "", out)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        rows(extra, schema, "<name>", out)
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--check", action="store_true", help="exit 1 if a generated page is out of date")
    args = p.parse_args(argv)
    stale = []
    for name, (path, _) in DOCS.items():
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date (run python scripts/schema_docs.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
