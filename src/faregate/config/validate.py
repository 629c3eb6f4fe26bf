"""Validate a loaded YAML document against its JSON Schema in `schemas/`: the single source of shape rules."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from faregate.config.load import ConfigIssue, YamlDoc, plain
from faregate.paths import schema_path


@cache
def validator(name: str) -> Draft202012Validator:
    """The compiled validator for `schemas/<name>.schema.json` (loaded once per process)."""
    schema = json.loads(schema_path(name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_issues(doc: YamlDoc, schema: str) -> tuple[Any, list[ConfigIssue]]:
    """The document as plain data, and every schema violation located at its line and column."""
    data = plain(doc.root)
    issues = [_issue(doc, e) for e in validator(schema).iter_errors(data)]
    return data, sorted(set(issues))


def _issue(doc: YamlDoc, err: ValidationError) -> ConfigIssue:
    if err.context:  # oneOf / anyOf: say what the closest alternative wanted
        err = _closest(err.context)
    path = list(err.absolute_path)
    message = err.message
    if err.validator == "pattern" and isinstance(err.schema, dict) and "description" in err.schema:
        message += f" ({err.schema['description'].rstrip('.')})"  # say what the pattern means
    if "propertyNames" in err.absolute_schema_path:  # a bad key: point at it, not at its mapping
        return doc.issue([*path, str(err.instance)], f"{'.'.join(map(str, path))}: {message}")
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        schema = err.schema if isinstance(err.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in err.instance if k not in allowed)
        if extra:
            hint = f" (allowed: {', '.join(sorted(allowed))})" if allowed else ""
            return doc.issue([*path, extra[0]], f"unknown field '{extra[0]}'{hint}")
    if err.validator == "required":
        where = ".".join(str(p) for p in path) or "the top level"
        return doc.issue(path, f"{err.message} in {where}")
    where = ".".join(str(p) for p in path)
    return doc.issue(path, f"{where}: {message}" if where else message, at_value=bool(path))


def _closest(alternatives: list[ValidationError]) -> ValidationError:
    """The error of the alternative the user meant: one whose type matched (its errors are inside it),
    e.g. a `use:` list with a bad model id is about the id, not about not being a selector object."""
    inside = [e for e in alternatives if not (e.validator == "type" and not e.relative_path)]
    closest: ValidationError = best_match(inside or alternatives)
    return closest
