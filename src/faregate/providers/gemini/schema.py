"""JSON Schema → the OpenAPI 3.0 subset Gemini accepts for function parameters and `responseSchema`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from faregate.canonical import JSONObject

# Gemini's `Schema` object (ai.google.dev/api/caching#Schema). It answers 400 "Unknown name" to any other
# key, so everything else (`additionalProperties`, `$schema`, `$id`, `const`, `oneOf`, `strict`, ...) is
# dropped, at every depth. An allow-list rather than a deny-list: JSON Schema keeps growing.
SCHEMA_KEYS: Final = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)
MAX_REF_DEPTH: Final = 8  # `$ref`s are inlined this deep; a recursive schema is cut there


def strip_schema(schema: Mapping[str, Any]) -> JSONObject:
    """A copy of `schema` Gemini accepts: unknown keys dropped, local `$ref`s (`#/$defs/X`,
    `#/definitions/X`) inlined, and JSON Schema's `"type": ["string", "null"]` as `type` + `nullable`."""
    defs = {**_mapping(schema.get("definitions")), **_mapping(schema.get("$defs"))}
    return _strip(schema, defs, 0)


def _strip(schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> JSONObject:
    ref = schema.get("$ref")
    if isinstance(ref, str) and depth < MAX_REF_DEPTH:
        target = defs.get(ref.rsplit("/", 1)[-1])
        if isinstance(target, Mapping):
            merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            return _strip(merged, defs, depth + 1)
    out: JSONObject = {}
    for key, value in schema.items():
        if key not in SCHEMA_KEYS:
            continue
        if key == "properties":  # a map of property name -> schema: the names are data, never stripped
            out[key] = {name: _strip(sub, defs, depth) for name, sub in _mapping(value).items()}
        elif key == "items" and isinstance(value, Mapping):
            out[key] = _strip(value, defs, depth)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [_strip(sub, defs, depth) for sub in value if isinstance(sub, Mapping)]
        elif key == "type" and isinstance(value, list):
            out.update(_type_list(value))
        else:
            out[key] = value
    return out


def _type_list(types: list[Any]) -> JSONObject:
    """Gemini takes a single `type`; JSON Schema's nullable form `["T", "null"]` becomes `nullable`."""
    out: JSONObject = {"nullable": True} if "null" in types else {}
    rest = [t for t in types if t != "null"]
    if len(rest) == 1:
        out["type"] = rest[0]
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, Mapping)}
