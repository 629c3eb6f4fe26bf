"""Validate a loaded YAML document against its JSON Schema in `schemas/`: the single source of shape rules."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import TYPE_CHECKING, Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from faregate.config.load import ConfigIssue, PathElem, YamlDoc, plain
from faregate.paths import schema_path

if TYPE_CHECKING:  # jsonschema (a tenth of a second to import) loads with the first validation, after the
    # server's port is open
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError


@cache
def validator(name: str) -> Draft202012Validator:
    """The compiled validator for `schemas/<name>.schema.json` (loaded once per process). The shipped
    schemas are checked against the 2020-12 metaschema by the tests (tests/unit/test_schemas.py), not at
    every start: that check alone took a third of a second before the port opened."""
    from jsonschema import Draft202012Validator

    schema = json.loads(schema_path(name).read_text(encoding="utf-8"))
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
    from jsonschema.exceptions import best_match

    closest: ValidationError = best_match(inside or alternatives)
    return closest


MAX_PRUNE_ROUNDS = 32


def valid_part(doc: YamlDoc, schema: str) -> tuple[YamlDoc | None, list[tuple[PathElem, ...]]]:
    """A copy of `doc` without the parts that break the schema, so the semantic checks can still run
    over the rest and report in the same run (an unknown model on another line, say). What an error
    names is removed (a bad value, an unknown field); a mapping or item that then misses a required
    field goes too. Positions are kept: a removed list item shifts the later items' line records.
    None when the rest still does not validate (a required top-level field is missing). Also the paths
    removed (paths of the original file only while no list item before them was removed)."""
    root = copy.deepcopy(doc.root)
    removed: list[tuple[PathElem, ...]] = []
    for _ in range(MAX_PRUNE_ROUNDS):
        errors = list(validator(schema).iter_errors(plain(root)))
        if not errors:
            return YamlDoc(doc.file, root), removed
        targets = {_target(e) for e in errors}
        # Deepest first, and list items from the end, so earlier removals do not move later targets.
        now = [t for t in sorted(targets, key=_prune_order, reverse=True) if t and _remove(root, t)]
        if not now:
            return None, removed
        removed += now
    return None, removed


def _target(err: ValidationError) -> tuple[PathElem, ...]:
    if err.context:  # oneOf / anyOf: what the alternative the user meant objects to
        err = _closest(err.context)
    path = tuple(err.absolute_path)
    if len(path) >= 3 and path[0] == "routes" and isinstance(path[2], int):
        return path[:3]  # a rule goes whole: without its bad `when` it would match everything
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = set(err.schema.get("properties", {})) if isinstance(err.schema, dict) else set()
        extra = sorted(str(k) for k in err.instance if k not in allowed)
        return (*path, extra[0]) if extra else path
    if "propertyNames" in err.absolute_schema_path:
        return (*path, str(err.instance))
    return path  # `required`: the mapping itself; anything else: the value at the path


def _prune_order(path: tuple[PathElem, ...]) -> tuple[int, tuple[str, ...]]:
    return len(path), tuple(f"{p:08d}" if isinstance(p, int) else p for p in path)


def _remove(root: Any, path: tuple[PathElem, ...]) -> bool:
    *parents, last = path
    node = root
    for elem in parents:
        try:
            node = node[elem]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(node, CommentedMap) and last in node:
        del node[last]
        return True
    if isinstance(node, CommentedSeq) and isinstance(last, int) and 0 <= last < len(node):
        del node[last]
        node.lc.data = {(k if k < last else k - 1): v for k, v in node.lc.data.items() if k != last}
        return True
    return False
