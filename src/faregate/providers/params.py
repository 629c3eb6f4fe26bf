"""Request parameters as data, for every upstream format (after Portkey's parameter maps): a table of
canonical field → `Param(target, default, min, max, transform)`, applied by one function; and the one
merge of a same-format client's `extra` fields into a rendered body.

Structure (system text, content parts, tools, thinking) stays in each format's functions; renames,
ranges, defaults and small conversions live in its table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any

from faregate.canonical import ChatRequest, JSONObject
from faregate.values import frozen


@frozen
class Param:
    """Where one canonical field goes in the upstream body, and how."""

    target: str  # dotted path in the upstream body ("metadata.user_id")
    default: Any = None  # sent when the request has no value (None: nothing sent)
    min: float | None = None  # the upstream's range: values outside it are clamped to it (a value inside
    max: float | None = None  # keeps its JSON type: 1 stays 1)
    transform: Callable[[Any], Any] | None = None  # applied after clamping: the upstream's shape
    path: tuple[str, ...] = field(init=False, repr=False, compare=False)
    plain: bool = field(init=False, repr=False, compare=False)  # a rename only: the hot path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", tuple(self.target.split(".")))
        plain = len(self.path) == 1 and self.min is None and self.max is None and self.transform is None
        object.__setattr__(self, "plain", plain)


def apply_params(body: JSONObject, req: ChatRequest, table: Mapping[str, Param]) -> JSONObject:
    """Set every field of `table` the request has (or that has a default) in `body`; returns `body`.
    Runs once per upstream attempt: a plain rename costs one getattr and one store."""
    for name, param in table.items():
        value = getattr(req, name)
        if value is None or (value.__class__ is tuple and not value):  # unset; cheaper than `== ()`
            if param.default is None:
                continue
            value = param.default
        if param.plain:
            body[param.target] = value
            continue
        if param.min is not None:
            value = max(value, param.min)
        if param.max is not None:
            value = min(value, param.max)
        if param.transform is not None:
            value = param.transform(value)
        set_path(body, param.path, value)
    return body


def set_path(body: JSONObject, path: tuple[str, ...], value: Any) -> None:
    *parents, leaf = path
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def merge_extra(body: JSONObject, extra: Mapping[str, Any]) -> JSONObject:
    """Add a same-format client's own fields to `body`: what faregate rendered wins, objects are merged
    key by key (a client's `generationConfig.seed` joins the rendered `generationConfig`)."""
    for key, value in extra.items():
        current = body.get(key)
        if key not in body:
            body[key] = value
        elif isinstance(current, dict) and isinstance(value, Mapping):
            merge_extra(current, value)
    return body
